// Extending the persisted index in place as the log grows, on a background
// thread, so that neither an append nor a close ever waits for it, and an
// open (after a clean close or after kill -9 of every writer) scans only the
// log written since its last batch. See docs/DESIGN.md, "The persisted
// index", and persisted_index.h for the trust rules.
//
// Invariants:
// - Every location upserted is a record this pass validated (checksum)
//   below its region's committed tail, read through the mapping; records
//   below a committed tail never change while a writable handle is open
//   (only a recovering first writer or compaction rewrites regions, and
//   both exclude live writers), so the entry stays true.
// - An entry is replaced only by a record of the same id with a higher
//   sequence (or when the old entry no longer names a record of its id):
//   regions are covered in batches, in no order of sequence.
// - A region's covered tail advances only at the end of the batch that
//   upserted its records (EndUpdate), so an opener that trusts a covered
//   tail finds every record before it in the table; entries past a covered
//   tail are harmless (readers bound them by the live log).
// - kLockIndex held exclusively for each batch: one writer of the file at a
//   time, and openers (which take it shared to validate the file) never see
//   a batch in progress unless its writer died. It is released between
//   batches so that an opener waits for one batch at most.
// - This runs on the handle's BackgroundTask thread and reads the regions
//   only through the mapping (RegionAt), never the indexing thread's
//   RegionInfo fields or index_mu_: appends and lookups never wait for it.
#include <sched.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "file_lock.h"
#include "file_ops.h"
#include "store_rep.h"
#include "tuning.h"

namespace recmap {
namespace {

// Records per batch: bounds how long an opener waits for kLockIndex and how
// soon a close's stop request is seen.
constexpr uint64_t kBatchRecords = 65536;
// A region still being written is covered again once this much was
// appended to it (a sealed one always, to its final tail).
constexpr uint64_t kOpenRegionStepBytes = uint64_t{1} << 20;

}  // namespace

void StoreRep::RegionSealed() {
  if (index_task_ == nullptr) return;
  // A store that cannot hold the floor of records yet (each takes at
  // least RecordSize(0) bytes) needs no thread.
  const Tuning tuning = CurrentTuning();
  if (uint64_t{known_regions()} * (region_size() / RecordSize(0)) <
      std::max(tuning.persist_index_min_records,
               tuning.persist_index_background_min_records))
    return;
  index_task_->Notify();
}

bool StoreRep::IndexPersisterIdle() {
  return index_task_ == nullptr || index_task_->Idle();
}

absl::Status StoreRep::FlushRange(uint64_t offset, uint64_t len) {
  if (absl::Status s = SyncError(); !s.ok()) return s;
  const uint64_t start = offset / kPageSize * kPageSize;
  absl::Status s = io::Msync(map_.base() + start, offset + len - start, path_);
  if (!s.ok()) {
    absl::MutexLock lock(&error_mu_);
    if (sync_error_.ok()) sync_error_ = s;
  }
  return s;
}

bool StoreRep::OpenIndexWriter(const std::vector<RegionRef>& refs,
                               uint64_t log_bytes) {
  const std::string path = IndexPathFor(path_);
  if (index_writer_ != nullptr && !index_writer_->IsCurrent())
    index_writer_.reset();  // another handle's writer replaced it
  if (index_writer_ == nullptr) {
    absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
        PersistedIndexWriter::Open(path, header_.uuid, region_size());
    if (w.ok()) index_writer_ = std::move(*w);
  }
  // A file that no longer describes this log (a region reformatted, cut
  // below its covered tail) is started again.
  if (index_writer_ != nullptr && !CheckCoverage(index_writer_->regions()).ok())
    index_writer_.reset();
  if (index_writer_ == nullptr) {
    // Sized for the log as it is, assuming records of 100 bytes or more;
    // the table doubles when it fills.
    const uint64_t expect = log_bytes / RecordSize(100);
    absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
        PersistedIndexWriter::Create(
            path, header_.uuid, region_size(),
            OffsetIndex::SlotsFor(std::max<uint64_t>(expect, 1024)),
            static_cast<uint32_t>(std::max<size_t>(64, 2 * refs.size())));
    if (!w.ok()) {
      IndexFailed(w.status());
      return false;
    }
    index_writer_ = std::move(*w);
  }
  return true;
}

bool StoreRep::GrowIndex(uint64_t slots, uint32_t region_capacity,
                         const std::atomic<bool>& stop) {
  absl::Status s = index_writer_->Grow(slots, region_capacity, &stop);
  if (!s.ok() && !absl::IsCancelled(s)) IndexFailed(s);
  return s.ok();
}

bool StoreRep::IndexRegionBatch(const std::vector<RegionRef>& refs, uint32_t i,
                                uint64_t epoch, uint64_t to,
                                const std::atomic<bool>& stop, uint64_t* from) {
  PersistedIndexWriter& w = *index_writer_;
  IndexedRegion g;
  g.epoch = epoch;
  g.tail = kRegionDataOffset;
  if (i < w.regions().size()) g = w.regions()[i];
  // Whether the record at `old` is older than (id, sequence), or not a
  // record of `id` at all (then it is replaced).
  auto older = [&](uint64_t old, uint64_t id, uint64_t sequence) {
    const uint32_t r = static_cast<uint32_t>(old >> 40);
    const uint64_t off = (old & ((uint64_t{1} << 40) - 1)) << 3;
    RecordHeader h;
    if (r >= refs.size() || off < kRegionDataOffset ||
        off + kRecordHeaderSize >
            refs[r].committed_tail().load(std::memory_order_acquire) ||
        !h.DecodeFrom(refs[r].base + off) || h.id != id)
      return true;
    return sequence > h.sequence;
  };
  bool full = false;
  uint64_t n = 0;
  // The end of the last record upserted: the batch covers the log to here.
  uint64_t end = *from;
  w.BeginUpdate(i);
  ScanResult res = ScanRegion(
      refs[i], *from, to, false, [&](const ScannedRecord& rec) -> bool {
        if (rec.header.type != RecordType::kPadding) {
          const uint64_t id = rec.header.id, seq = rec.header.sequence;
          if (!w.Upsert(id, Pack(i, rec.offset),
                        [&](uint64_t old) { return older(old, id, seq); })) {
            // No empty slot (the entry count understated the table): this
            // record stays uncovered, the batch ends before it.
            full = true;
            return false;
          }
          g.records++;
          g.payload_bytes += rec.header.length;
        }
        g.fill += RecordSize(rec.header.length);
        end = rec.offset + RecordSize(rec.header.length);
        full = !w.HasRoom(1);
        return !full && ++n < kBatchRecords &&
               !(n % 4096 == 0 && stop.load(std::memory_order_acquire));
      });
  w.RaiseMaxSequence(res.max_sequence);
  g.tail = end;
  w.SetRegion(i, g);
  w.EndUpdate();
  const bool progress = end > *from;
  *from = end;
  if (full && !GrowIndex(OffsetIndex::SlotsFor(2 * w.entries()),
                         w.region_capacity(), stop))
    return false;
  // Damage before `to` ends the coverage of this region there: the
  // open-time scan reports it.
  return progress && (res.stopped || end >= to);
}

void StoreRep::PersistIndexPass(const std::atomic<bool>& stop, bool to_tail) {
  if (!SyncError().ok()) return;
  (void)LoadNewRegions();
  const uint32_t n = known_regions();
  std::vector<RegionRef> refs;
  std::vector<uint64_t> epochs;
  uint64_t log_bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    RegionRef ref;
    uint64_t epoch = 0;
    if (!RegionAt(i, &ref, &epoch)) break;  // coverage ends before it
    const uint64_t t = ref.committed_tail().load(std::memory_order_acquire);
    if (ref.PlausibleTail(t)) log_bytes += t - kRegionDataOffset;
    refs.push_back(ref);
    epochs.push_back(epoch);
  }
  // Stores that cannot hold the floor of records get no index file.
  if (log_bytes / RecordSize(0) < CurrentTuning().persist_index_min_records)
    return;

  absl::StatusOr<bool> got = TryLock(fd_, kLockIndex, LockKind::kExclusive);
  if (!got.ok() || !*got) return;  // another handle is writing it
  struct Unlocker {
    int fd;
    bool held = true;
    ~Unlocker() {
      if (held) (void)Unlock(fd, kLockIndex);
    }
  } unlocker{fd_};
  if (!OpenIndexWriter(refs, log_bytes)) return;

  for (uint32_t i = 0; i < refs.size(); ++i) {
    if (stop.load(std::memory_order_acquire)) return;
    PersistedIndexWriter& w = *index_writer_;
    // Region entries are kept in region order: a region is covered only
    // once the one before it has an entry.
    if (i > w.regions().size()) return;
    if (i >= w.region_capacity() &&
        !GrowIndex(w.slots(),
                   std::max<uint32_t>(2 * w.region_capacity(),
                                      static_cast<uint32_t>(n)),
                   stop))
      return;
    const bool known = i < w.regions().size();
    uint64_t from = known ? w.regions()[i].tail : kRegionDataOffset;
    const uint64_t to =
        refs[i].committed_tail().load(std::memory_order_acquire);
    if (!refs[i].PlausibleTail(to)) return;
    const bool step = to > from && (to_tail || refs[i].sealed() ||
                                    to - from >= kOpenRegionStepBytes);
    if (!step) {
      if (!known) {
        // An entry that covers nothing yet, so that the next region can
        // have one.
        IndexedRegion g;
        g.epoch = epochs[i];
        g.tail = from;
        w.BeginUpdate(i);
        w.SetRegion(i, g);
        w.EndUpdate();
      }
      continue;
    }
    while (from < to) {
      if (!IndexRegionBatch(refs, i, epochs[i], to, stop, &from)) break;
      if (stop.load(std::memory_order_acquire)) return;
      // Let a waiting opener in between batches.
      (void)Unlock(fd_, kLockIndex);
      unlocker.held = false;
      sched_yield();
      got = TryLock(fd_, kLockIndex, LockKind::kExclusive);
      if (!got.ok() || !*got) return;
      unlocker.held = true;
      if (!index_writer_->IsCurrent()) return;
    }
  }
}

}  // namespace recmap
