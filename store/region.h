// One region of a mapped store: validating its records, and the live words
// of its state page. Every read is bounds-checked against the region.
#ifndef RECMAP_STORE_REGION_H_
#define RECMAP_STORE_REGION_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>

#include "format.h"

namespace recmap {

// Why a scan of a region's log stopped.
enum class ScanStop {
  kLimit,        // reached the requested limit exactly
  kZero,         // found never-written space (a zero header)
  kRegionEnd,    // no room for another header before the region's end
  kTruncated,    // a record extends past the limit or the region
  kBadHeader,    // unknown type, non-zero reserved bytes, zero sequence
  kBadChecksum,  // the checksum does not match
};
const char* ScanStopName(ScanStop stop);
inline bool IsDamage(ScanStop s) {
  return s == ScanStop::kTruncated || s == ScanStop::kBadHeader ||
         s == ScanStop::kBadChecksum;
}

struct RegionRef {
  char* base = nullptr;  // start of the region in the mapping
  uint64_t size = 0;     // region size
  uint32_t index = 0;
  uint64_t seed = 0;  // RegionSeed(uuid, index, epoch)

  // Live words of the state page. The committed tail is the publication
  // point: written with release by the region's owner, read with acquire.
  std::atomic_ref<uint64_t> committed_tail() const {
    return Word64(kStateCommittedTail);
  }
  std::atomic_ref<uint32_t> sealed_word() const { return Word32(kStateSealed); }
  std::atomic_ref<uint32_t> owner_pid() const { return Word32(kStateOwnerPid); }
  std::atomic_ref<uint64_t> durable_tail_word() const {
    return Word64(kStateDurableTail);
  }
  std::atomic_ref<uint64_t> durable_check_word() const {
    return Word64(kStateDurableCheck);
  }
  std::atomic_ref<uint64_t> pending_sequence() const {
    return Word64(kStatePendingSequence);
  }
  bool sealed() const {
    return sealed_word().load(std::memory_order_acquire) == kSealedMagic;
  }
  // The durable tail if its check word matches, else 0 (no floor).
  uint64_t DurableTail() const;
  void SetDurableTail(uint64_t tail) const;

  // A committed tail is plausible if it is 8-aligned and inside the data.
  bool PlausibleTail(uint64_t tail) const {
    return tail >= kRegionDataOffset && tail <= size && tail % 8 == 0;
  }

 private:
  std::atomic_ref<uint64_t> Word64(uint64_t off) const {
    return MappedWord64(base + kRegionStatePageOffset, off);
  }
  std::atomic_ref<uint32_t> Word32(uint64_t off) const {
    return MappedWord32(base + kRegionStatePageOffset, off);
  }
};

// One validated record found by a scan.
struct ScannedRecord {
  uint64_t offset;  // region-relative offset of the header
  RecordHeader header;
  const char* payload;
};

// Validates the record at region-relative `pos`, which must be 8-aligned and
// at least kRegionDataOffset; the record must end at or before `limit`
// (<= region size). Returns kLimit on success (filling `out`), or why not.
// With `verify_checksum` false everything but the checksum is checked: the
// caller must check it (RecordChecksum) before trusting the record.
// Inline: it runs once per record in every scan.
inline ScanStop CheckRecordAt(const RegionRef& r, uint64_t pos, uint64_t limit,
                              ScannedRecord* out, bool verify_checksum = true) {
  if (limit > r.size) limit = r.size;
  if (pos + kRecordHeaderSize > limit) {
    // Not even a header fits. At the region's physical end that is the
    // normal end of a full region; before a limit inside the region it is a
    // truncated record.
    return limit == r.size ? ScanStop::kRegionEnd : ScanStop::kTruncated;
  }
  const char* p = r.base + pos;
  RecordHeader& h = out->header;
  if (!h.DecodeFrom(p)) return ScanStop::kBadHeader;
  if (h.type == RecordType::kZero) {
    // Never-written space is all zero; anything else with type 0 is damage.
    if (h.checksum == 0 && h.length == 0 && h.id == 0 && h.sequence == 0) {
      return ScanStop::kZero;
    }
    return ScanStop::kBadHeader;
  }
  if (h.sequence == 0 || h.sequence > kMaxSequence) return ScanStop::kBadHeader;
  if (IsTombstone(h.type) && h.length != 0) return ScanStop::kBadHeader;
  if (uint64_t{h.length} > limit - pos - kRecordHeaderSize) {
    return ScanStop::kTruncated;
  }
  // The padded footprint may exceed `limit` only if limit is the region end
  // and not 8-aligned, which cannot happen (region sizes are page multiples).
  if (verify_checksum && RecordChecksum(p, h.length, r.seed) != h.checksum) {
    return ScanStop::kBadChecksum;
  }
  out->offset = pos;
  out->payload = p + kRecordHeaderSize;
  return ScanStop::kLimit;
}

// Page closing. Once a Sync() has made bytes of a data page durable, the
// region's owner never writes into that page again: a power cut during a
// rewrite of the page could tear the synced records in it. The owner
// leaves the rest of the page zero and continues at the next page boundary
// with a resume marker: a padding record whose 8-byte payload is the
// region-relative offset where the zero gap starts. A scan that cannot read
// a record at a non-page-aligned `gap` continues past the gap only if the
// gap is all zero and such a marker naming exactly `gap` validates;
// the marker then comes back in `out`. The marker is written only when
// nothing was written in the gap, so skipping it never hides a record.
// (The marker's payload length is kResumeMarkerLength, format.h.)
bool ResumeMarkerAfterGap(const RegionRef& r, uint64_t gap, uint64_t limit,
                          ScannedRecord* out);

struct ScanResult {
  uint64_t end = kRegionDataOffset;  // offset after the last valid record
  uint64_t records = 0;
  uint64_t max_sequence = 0;
  ScanStop stop = ScanStop::kLimit;
  // Salvage only: bytes skipped over, and where the first damage was.
  uint64_t skipped_bytes = 0;
  uint64_t first_damage = 0;
  ScanStop first_damage_kind = ScanStop::kLimit;
  bool stopped = false;  // fn returned false: the scan ended early at `end`
};

// Scans records from `from` while they validate and end at or before `limit`,
// calling fn(const ScannedRecord&) for each. With `salvage`, damage does not
// stop the scan: it resynchronises on the next 8-aligned offset holding a
// valid record. If fn returns bool, false ends the scan after that record
// (res.stopped; res.stop is then kLimit).
// The steps of ScanRegion.
namespace region_internal {

// Validates the record at `pos` -- or, after a zero gap ending the page at
// `pos`, the resume marker that continues the log (a gap shorter than a
// header reads as a bad header, its last bytes being the marker's, so any
// failure at a non-page-aligned offset may be one).
inline ScanStop ReadAt(const RegionRef& r, uint64_t pos, uint64_t limit,
                       bool verify_checksum, ScannedRecord* rec) {
  const ScanStop s = CheckRecordAt(r, pos, limit, rec, verify_checksum);
  if (s != ScanStop::kLimit && pos % kPageSize != 0 &&
      ResumeMarkerAfterGap(r, pos, limit, rec))
    return ScanStop::kLimit;  // the log resumes at the next page
  return s;
}

// Calls fn(rec); whether the scan goes on (fn returning void: always).
template <typename Fn>
inline bool Deliver(Fn& fn, const ScannedRecord& rec) {
  if constexpr (std::is_same_v<std::invoke_result_t<Fn&, const ScannedRecord&>,
                               bool>) {
    return fn(rec);
  } else {
    fn(rec);
    return true;
  }
}

// Salvage: moves *pos past what stopped the scan there (`s`) to where it
// may resume, counting the damage in `res`; false if the log ends at *pos
// (zeros with nothing valid after them, or not damage at all).
bool SkipDamage(const RegionRef& r, ScanStop s, uint64_t limit, uint64_t* pos,
                ScanResult* res);
// Salvage, at the end of the scan (stopped at `pos`): bytes skipped past
// the last valid record are a torn tail, not skipped records.
void TrimTornTail(uint64_t pos, ScanResult* res);

}  // namespace region_internal

template <typename Fn>
ScanResult ScanRegion(const RegionRef& r, uint64_t from, uint64_t limit,
                      bool salvage, Fn&& fn) {
  ScanResult res;
  res.end = from;
  uint64_t pos = from;
  while (pos < limit) {
    ScannedRecord rec;
    const ScanStop s =
        region_internal::ReadAt(r, pos, limit, /*verify=*/true, &rec);
    if (s == ScanStop::kLimit) {
      const bool more = region_internal::Deliver(fn, rec);
      res.records++;
      if (rec.header.sequence > res.max_sequence)
        res.max_sequence = rec.header.sequence;
      pos = res.end = rec.offset + RecordSize(rec.header.length);
      if (!more) {
        res.stopped = true;
        break;
      }
      continue;
    }
    if (!salvage || !region_internal::SkipDamage(r, s, limit, &pos, &res)) {
      res.stop = s;
      break;
    }
  }
  if (salvage) region_internal::TrimTornTail(pos, &res);
  return res;
}

}  // namespace recmap

#endif  // RECMAP_STORE_REGION_H_
