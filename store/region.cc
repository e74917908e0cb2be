#include "region.h"

#include "coding.h"

namespace recmap {

const char* ScanStopName(ScanStop stop) {
  switch (stop) {
    case ScanStop::kLimit:
      return "limit";
    case ScanStop::kZero:
      return "end of log";
    case ScanStop::kRegionEnd:
      return "end of region";
    case ScanStop::kTruncated:
      return "truncated record";
    case ScanStop::kBadHeader:
      return "invalid record header";
    case ScanStop::kBadChecksum:
      return "checksum mismatch";
  }
  return "?";
}

uint64_t RegionRef::DurableTail() const {
  uint64_t tail = durable_tail_word().load(std::memory_order_acquire);
  uint64_t check = durable_check_word().load(std::memory_order_acquire);
  if (check != DurableCheck(tail, seed) || !PlausibleTail(tail)) return 0;
  return tail;
}

void RegionRef::SetDurableTail(uint64_t tail) const {
  durable_check_word().store(0, std::memory_order_relaxed);
  durable_tail_word().store(tail, std::memory_order_relaxed);
  durable_check_word().store(DurableCheck(tail, seed),
                             std::memory_order_release);
}

bool ResumeMarkerAfterGap(const RegionRef& r, uint64_t gap, uint64_t limit,
                          ScannedRecord* out) {
  if (limit > r.size) limit = r.size;
  const uint64_t next = (gap / kPageSize + 1) * kPageSize;
  if (gap < kRegionDataOffset || next > limit) return false;
  for (uint64_t p = gap; p < next; p += 8) {
    if (DecodeFixed64(r.base + p) != 0) return false;
  }
  if (CheckRecordAt(r, next, limit, out) != ScanStop::kLimit) return false;
  return IsPadding(out->header.type) &&
         out->header.length == kResumeMarkerLength &&
         DecodeFixed64(out->payload) == gap;
}

namespace region_internal {

bool SkipDamage(const RegionRef& r, ScanStop s, uint64_t limit, uint64_t* pos,
                ScanResult* res) {
  if (s == ScanStop::kZero) {
    // Zeros where the log should go on (a lost page) are damage too if a
    // valid record follows somewhere in the region. Resume right at that
    // record: stepping 8 bytes and searching again would make a large
    // zeroed area quadratic.
    ScannedRecord next;
    uint64_t q = *pos + 8;
    while (q + kRecordHeaderSize <= limit &&
           CheckRecordAt(r, q, limit, &next) != ScanStop::kLimit)
      q += 8;
    if (q + kRecordHeaderSize > limit) return false;  // the log ends here
    if (res->first_damage == 0) {
      res->first_damage = *pos;
      res->first_damage_kind = ScanStop::kBadHeader;
    }
    res->skipped_bytes += q - *pos;
    *pos = q;
    return true;
  }
  if (!IsDamage(s)) return false;
  if (res->first_damage == 0) {
    res->first_damage = *pos;
    res->first_damage_kind = s;
  }
  *pos += 8;
  res->skipped_bytes += 8;
  return true;
}

void TrimTornTail(uint64_t pos, ScanResult* res) {
  if (res->first_damage == 0) return;
  if (res->skipped_bytes > pos - res->end)
    res->skipped_bytes -= pos - res->end;
  else
    res->skipped_bytes = 0;
}

}  // namespace region_internal

}  // namespace recmap
