#include "log_recovery.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "region_set.h"
#include "store_index.h"
#include "store_peer.h"

namespace recmap {

RegionInfo& LogRecovery::region(uint32_t i) const { return (*c_.regions)[i]; }

absl::StatusOr<uint64_t> LogRecovery::Run(bool full) {
  full_ = full;
  uint64_t max_seq = 0;
  const uint32_t n = c_.regions->known();
  for (uint32_t i = 0; i < n; ++i) {
    if (absl::Status s = RecoverRegion(i, &max_seq); !s.ok()) return s;
  }
  return max_seq;
}

absl::Status LogRecovery::RecoverRegion(uint32_t i, uint64_t* max_seq) {
  RegionRecovery rr;
  rr.region = i;
  if (!region(i).formatted) {
    if (absl::Status s = RecoverUnformatted(i, &rr); !s.ok()) return s;
    c_.report->regions.push_back(rr);
    return absl::OkStatus();
  }
  // The durable tail first: a live writer may append and Sync() between
  // the two loads, and only in this order is durable <= committed (the
  // durable tail never passes the committed tail, and neither goes back).
  const RegionRef& r = region(i).ref;
  rr.durable_tail = r.DurableTail();
  rr.committed_tail = r.committed_tail().load(std::memory_order_acquire);
  absl::StatusOr<uint64_t> limit = ScanLimit(i, rr);
  if (!limit.ok()) return limit.status();
  const ScanResult res = Scan(i, *limit, max_seq, &rr);
  if (absl::Status s = CheckLog(i, rr, res, *limit); !s.ok()) return s;
  if (full_ && c_.read_only) ReportUnreadable(i, rr, res);
  region(i).indexed_end.store(res.end, std::memory_order_release);
  if (full_ && !c_.read_only) {
    if (absl::Status s = Repair(i, rr, res); !s.ok()) return s;
  }
  region(i).done = r.sealed() && res.end >= r.committed_tail().load(
                                                std::memory_order_acquire);
  c_.report->regions.push_back(rr);
  return absl::OkStatus();
}

absl::Status LogRecovery::RecoverUnformatted(uint32_t i, RegionRecovery* rr) {
  const RegionInfo& ri = region(i);
  rr->header_damaged = ri.damaged;
  if (ri.damaged || !full_ || c_.read_only) return absl::OkStatus();
  // A trailing region whose header never reached the disk: no record in it
  // can have been published. Give it a fresh epoch.
  if (absl::Status s = c_.regions->Format(i, /*fresh=*/false); !s.ok())
    return s;
  rr->reformatted = true;
  rr->valid_end = rr->committed_tail = kRegionDataOffset;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LogRecovery::ScanLimit(
    uint32_t i, const RegionRecovery& rr) const {
  const RegionRef& r = region(i).ref;
  const RecoveryMode mode = c_.recovery_mode;
  // How far to read: with a live writer, exactly its published tail; when
  // no writer is live, every record that validates (an unpublished but
  // complete record, or records whose tail update was lost in a power cut,
  // are kept) -- except in absolute mode, which holds the log to its tail.
  if (full_ && mode != RecoveryMode::kAbsoluteConsistency) return r.size;
  if (r.PlausibleTail(rr.committed_tail)) return rr.committed_tail;
  if (mode == RecoveryMode::kAbsoluteConsistency) {
    return absl::DataLossError(absl::StrCat(
        *c_.path, ": region ", i, " has an invalid committed tail ",
        rr.committed_tail, " (state page at offset ",
        c_.regions->Offset(i) + kRegionStatePageOffset, ")"));
  }
  return kRegionDataOffset;
}

ScanResult LogRecovery::Scan(uint32_t i, uint64_t limit, uint64_t* max_seq,
                             RegionRecovery* rr) {
  const bool salvage = c_.recovery_mode == RecoveryMode::kSalvage;
  // A region the persisted index covers is read from its covered tail (the
  // index holds the records before it); AdoptPersistedIndex checked that
  // this log is the one it describes.
  const PersistedIndex* base = c_.index->base();
  const IndexedRegion* covered = base != nullptr && i < base->regions().size()
                                     ? &base->regions()[i]
                                     : nullptr;
  const uint64_t from =
      covered != nullptr ? std::min(covered->tail, limit) : kRegionDataOffset;
  if (covered != nullptr) *max_seq = std::max(*max_seq, base->max_sequence());
  const ScanResult res =
      c_.index->IndexRecoveredRegion(i, covered, from, limit, salvage);
  rr->valid_end = res.end;
  rr->records = (covered != nullptr ? covered->records : 0) + res.records;
  c_.report->scanned_records += res.records;
  const bool damage_skipped = salvage && res.first_damage != 0;
  rr->stop = ToLogEnd(damage_skipped ? res.first_damage_kind : res.stop);
  rr->stop_offset = damage_skipped ? res.first_damage : res.end;
  rr->skipped_bytes = res.skipped_bytes;
  *max_seq = std::max(*max_seq, res.max_sequence);
  return res;
}

absl::Status LogRecovery::CheckLog(uint32_t i, const RegionRecovery& rr,
                                   const ScanResult& res,
                                   uint64_t limit) const {
  const RecoveryMode mode = c_.recovery_mode;
  if (mode == RecoveryMode::kSalvage) return absl::OkStatus();
  // Reading to a committed tail (a live writer's, or in absolute mode),
  // the log must reach it: a zero header before it is damage too.
  const bool to_tail = !full_ || mode == RecoveryMode::kAbsoluteConsistency;
  const bool short_of_tail = to_tail && res.end < limit;
  // Whatever stopped the scan (zeros too: a lost page reads as zeros), a log
  // ending below the durable tail has lost records a Sync() promised.
  const bool below_floor = res.end < rr.durable_tail;
  const bool damaged = IsDamage(res.stop) || res.first_damage != 0 ||
                       short_of_tail || below_floor;
  const bool below_tail = !full_ && res.end < limit;
  if (!damaged || (mode != RecoveryMode::kAbsoluteConsistency && !below_floor &&
                   !below_tail))
    return absl::OkStatus();
  return absl::DataLossError(absl::StrCat(
      *c_.path, ": region ", i, ": ", ScanStopName(res.stop),
      " at file offset ", c_.regions->Offset(i) + res.end,
      below_floor ? absl::StrCat(", below the durable tail at ",
                                 c_.regions->Offset(i) + rr.durable_tail)
                  : std::string(),
      below_tail ? " (below a live writer's committed tail)" : ""));
}

void LogRecovery::ReportUnreadable(uint32_t i, const RegionRecovery& rr,
                                   const ScanResult& res) {
  const RegionRef& r = region(i).ref;
  if (!r.PlausibleTail(rr.committed_tail) || res.end >= rr.committed_tail)
    return;
  // A writable open would cut the log here and say nothing: these records
  // were published, and this handle cannot return them.
  const bool cut = static_cast<int64_t>(i) == c_.report->cut_region &&
                   rr.committed_tail > c_.report->trailing_bytes;
  RegionInfo& ri = region(i);
  ri.unreadable_bytes = rr.committed_tail - res.end;
  c_.report->unreadable_bytes += ri.unreadable_bytes;
  c_.report->unreadable.push_back(absl::StrCat(
      *c_.path, ": region ", i, ": ",
      cut ? absl::StrCat("the file is cut short at offset ",
                         c_.regions->Offset(i) + c_.report->trailing_bytes)
          : absl::StrCat("the log ends (", ScanStopName(res.stop),
                         ") at file offset ", c_.regions->Offset(i) + res.end),
      ", below the committed tail at file offset ",
      c_.regions->Offset(i) + rr.committed_tail, ": ",
      rr.committed_tail - res.end,
      " bytes of published records cannot be read"));
}

absl::Status LogRecovery::Repair(uint32_t i, const RegionRecovery& rr,
                                 const ScanResult& res) {
  const RegionRef& r = region(i).ref;
  // The log from here on is res.end; anything past it is garbage, an
  // unfinished record or records lost before it, and must be scrubbed
  // before anyone appends (the next claimer does it). When the cut is at
  // damage, valid records may follow it: zero them now, or a later salvage
  // would bring back records this recovery declared lost, beside new
  // records that reuse their sequence numbers. The same for any non-zero
  // bytes left past the end (a record cut off by zeros, a torn record):
  // zero them now rather than at the next claim, which never comes for a
  // sealed region.
  bool stale = IsDamage(res.stop);
  for (uint64_t p = res.end; !stale && p + 8 <= r.size; p += 8) {
    stale = DecodeFixed64(r.base + p) != 0;
  }
  if (stale) {
    if (absl::Status s = c_.regions->ScrubTail(i, res.end); !s.ok()) return s;
  }
  if (rr.committed_tail != res.end) {
    r.committed_tail().store(res.end, std::memory_order_release);
  }
  if (!r.sealed() && r.owner_pid().load(std::memory_order_relaxed) == 0) {
    r.owner_pid().store(kScrubOwner, std::memory_order_release);
  }
  if (r.DurableTail() > res.end) r.SetDurableTail(res.end);
  return absl::OkStatus();
}

}  // namespace recmap
