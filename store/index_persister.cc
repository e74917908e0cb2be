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
//   only through the mapping (RegionSet::ReadHeaderAt), never the indexing
//   thread's RegionInfo fields or the index lock: appends and lookups never
//   wait for it.
#include "index_persister.h"

#include <sched.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "durability.h"
#include "file_lock.h"
#include "location.h"
#include "offset_index.h"
#include "region_set.h"
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

// kLockIndex, held exclusively by a pass, released between batches.
class IndexPersister::IndexLock {
 public:
  explicit IndexLock(int fd) : fd_(fd) {}
  ~IndexLock() {
    if (held_) (void)Unlock(fd_, kLockIndex);
  }
  // False if another handle holds it; the error if the lock call failed.
  absl::StatusOr<bool> Take() {
    absl::StatusOr<bool> got = TryLock(fd_, kLockIndex, LockKind::kExclusive);
    held_ = got.ok() && *got;
    return got;
  }
  // Lets a waiting opener in, then takes the lock again.
  absl::StatusOr<bool> Yield() {
    (void)Unlock(fd_, kLockIndex);
    held_ = false;
    sched_yield();
    return Take();
  }

 private:
  const int fd_;
  bool held_ = false;
};

absl::Status CheckCoverage(const RegionSet& regions,
                           const std::vector<IndexedRegion>& covered) {
  if (covered.size() > regions.known()) {
    return absl::FailedPreconditionError(
        absl::StrCat("covers ", covered.size(), " regions; the store has ",
                     regions.known()));
  }
  for (uint32_t i = 0; i < covered.size(); ++i) {
    const IndexedRegion& g = covered[i];
    RegionRef ref;
    uint64_t epoch = 0;
    if (!regions.ReadHeaderAt(i, &ref, &epoch)) {
      return absl::FailedPreconditionError(
          absl::StrCat("region ", i, " is not usable"));
    }
    if (epoch != g.epoch) {
      return absl::FailedPreconditionError(
          absl::StrCat("region ", i, " was reformatted (epoch ", epoch,
                       ", index has ", g.epoch, ")"));
    }
    // Within one boot (Load checked it) the covered records are in the
    // page cache, durable or not; a log cut below its covered tail is
    // another log.
    const uint64_t tail = ref.committed_tail().load(std::memory_order_acquire);
    if (g.tail < kRegionDataOffset || !ref.PlausibleTail(tail) ||
        tail < g.tail) {
      return absl::FailedPreconditionError(
          absl::StrCat("region ", i, " covered tail ", g.tail,
                       " is past its committed tail ", tail));
    }
  }
  return absl::OkStatus();
}

bool IndexPersister::enabled() const {
  const Options& o = *c_.options;
  return !o.read_only && o.persist_index &&
         o.recovery_mode == RecoveryMode::kTolerateTornTail;
}

void IndexPersister::StartBackground(bool cover_now) {
  task_ = std::make_unique<BackgroundTask>(
      [this](const std::atomic<bool>& stop) { Pass(stop, /*to_tail=*/false); },
      kIndexPassInterval);
  if (cover_now) task_->Notify();
}

void IndexPersister::RegionSealed() {
  if (task_ == nullptr) return;
  // A store that cannot hold the floor of records yet (each takes at
  // least RecordSize(0) bytes) needs no thread.
  const RegionSet& regions = *c_.regions;
  const Tuning tuning = CurrentTuning();
  if (uint64_t{regions.known()} * (regions.region_size() / RecordSize(0)) <
      std::max(tuning.persist_index_min_records,
               tuning.persist_index_background_min_records))
    return;
  task_->Notify();
}

bool IndexPersister::Idle() { return task_ == nullptr || task_->Idle(); }

void IndexPersister::Stop() {
  if (task_ != nullptr) task_->Stop();
}

absl::Status IndexPersister::first_error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

void IndexPersister::Failed(const absl::Status& s) {
  {
    absl::MutexLock lock(&mu_);
    if (error_.ok())
      error_ = absl::Status(s.code(),
                            absl::StrCat(IndexPathFor(*c_.path),
                                         ": index file not updated (the log is "
                                         "intact): ",
                                         s.message()));
  }
  if (c_.options->on_background_error) c_.options->on_background_error(s);
}

bool IndexPersister::Held(const absl::StatusOr<bool>& got) {
  if (!got.ok()) Failed(got.status());
  return got.ok() && *got;
}

IndexPersister::LogView IndexPersister::ViewLog() const {
  LogView log;
  const uint32_t n = log.known = c_.regions->known();
  for (uint32_t i = 0; i < n; ++i) {
    RegionRef ref;
    uint64_t epoch = 0;
    if (!c_.regions->ReadHeaderAt(i, &ref, &epoch)) break;
    const uint64_t t = ref.committed_tail().load(std::memory_order_acquire);
    if (ref.PlausibleTail(t)) log.log_bytes += t - kRegionDataOffset;
    log.refs.push_back(ref);
    log.epochs.push_back(epoch);
  }
  return log;
}

uint64_t IndexPersister::LogView::UncoveredBy(
    const std::vector<IndexedRegion>& covered) const {
  uint64_t uncovered = 0;
  for (uint32_t i = 0; i < refs.size(); ++i) {
    const uint64_t t = refs[i].committed_tail().load(std::memory_order_acquire);
    const uint64_t c = i < covered.size() ? covered[i].tail : kRegionDataOffset;
    if (refs[i].PlausibleTail(t) && t > c) uncovered += t - c;
  }
  return uncovered;
}

void IndexPersister::CatchUpAtClose(
    const std::vector<IndexedRegion>* opened_with) {
  if (!enabled()) return;
  const std::atomic<bool> never{false};
  if (!c_.options->persist_index_in_background) {
    Pass(never, /*to_tail=*/true);
    return;
  }
  // The background writer has stopped. What it left uncovered is at most
  // kOpenRegionStepBytes per region being written, unless it fell behind:
  // a little is covered now (so that the next open scans nothing), a lot
  // is left to the next open rather than make the close wait for it.
  static const std::vector<IndexedRegion> kNone;
  const std::vector<IndexedRegion>& covered =
      writer_ != nullptr       ? writer_->regions()
      : opened_with != nullptr ? *opened_with
                               : kNone;
  const uint64_t uncovered = ViewLog().UncoveredBy(covered);
  if (uncovered != 0 && uncovered <= kCloseCatchUpBytes)
    Pass(never, /*to_tail=*/true);
}

bool IndexPersister::OpenWriter(const LogView& log) {
  const std::string path = IndexPathFor(*c_.path);
  const FileHeader& header = *c_.header;
  if (writer_ != nullptr && !writer_->IsCurrent())
    writer_.reset();  // another handle's writer replaced it
  if (writer_ == nullptr) {
    absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
        PersistedIndexWriter::Open(path, header.uuid, header.region_size);
    if (w.ok()) writer_ = std::move(*w);
  }
  // A file that no longer describes this log (a region reformatted, cut
  // below its covered tail) is started again.
  if (writer_ != nullptr &&
      !CheckCoverage(*c_.regions, writer_->regions()).ok())
    writer_.reset();
  if (writer_ == nullptr) {
    // Sized for the log as it is, assuming records of 100 bytes or more;
    // the table doubles when it fills.
    const uint64_t expect = log.log_bytes / RecordSize(100);
    absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
        PersistedIndexWriter::Create(
            path, header.uuid, header.region_size,
            OffsetIndex::SlotsFor(std::max<uint64_t>(expect, 1024)),
            static_cast<uint32_t>(std::max<size_t>(64, 2 * log.refs.size())));
    if (!w.ok()) {
      Failed(w.status());
      return false;
    }
    writer_ = std::move(*w);
  }
  return true;
}

bool IndexPersister::Grow(uint64_t slots, uint32_t region_capacity,
                          const std::atomic<bool>& stop) {
  absl::Status s = writer_->Grow(slots, region_capacity, &stop);
  if (!s.ok() && !absl::IsCancelled(s)) Failed(s);
  return s.ok();
}

void IndexPersister::Pass(const std::atomic<bool>& stop, bool to_tail) {
  if (!c_.durability->Check().ok()) return;
  (void)c_.regions->LoadNew();
  const LogView log = ViewLog();
  // Stores that cannot hold the floor of records get no index file.
  if (log.log_bytes / RecordSize(0) < CurrentTuning().persist_index_min_records)
    return;
  IndexLock lock(c_.fd);
  if (!Held(lock.Take())) return;
  if (!OpenWriter(log)) return;
  for (uint32_t i = 0; i < log.refs.size(); ++i) {
    if (stop.load(std::memory_order_acquire)) return;
    if (!CoverRegion(log, i, to_tail, stop, lock)) return;
  }
}

bool IndexPersister::CoverRegion(const LogView& log, uint32_t i, bool to_tail,
                                 const std::atomic<bool>& stop,
                                 IndexLock& lock) {
  PersistedIndexWriter& w = *writer_;
  // Region entries are kept in region order: a region is covered only
  // once the one before it has an entry.
  if (i > w.regions().size()) return false;
  if (i >= w.region_capacity() &&
      !Grow(w.slots(), std::max<uint32_t>(2 * w.region_capacity(), log.known),
            stop))
    return false;
  const RegionRef& ref = log.refs[i];
  const bool known = i < writer_->regions().size();
  uint64_t from = known ? writer_->regions()[i].tail : kRegionDataOffset;
  const uint64_t to = ref.committed_tail().load(std::memory_order_acquire);
  if (!ref.PlausibleTail(to)) return false;
  const bool step = to > from && (to_tail || ref.sealed() ||
                                  to - from >= kOpenRegionStepBytes);
  if (!step) {
    if (!known) {
      // An entry that covers nothing yet, so that the next region can have
      // one.
      IndexedRegion g;
      g.epoch = log.epochs[i];
      g.tail = from;
      writer_->BeginUpdate(i);
      writer_->SetRegion(i, g);
      writer_->EndUpdate();
    }
    return true;
  }
  while (from < to) {
    if (!RegionBatch(log, i, to, stop, &from)) break;
    if (stop.load(std::memory_order_acquire)) return false;
    if (!Held(lock.Yield())) return false;
    if (!writer_->IsCurrent()) return false;
  }
  return true;
}

bool IndexPersister::RegionBatch(const LogView& log, uint32_t i, uint64_t to,
                                 const std::atomic<bool>& stop,
                                 uint64_t* from) {
  PersistedIndexWriter& w = *writer_;
  const std::vector<RegionRef>& refs = log.refs;
  IndexedRegion g;
  g.epoch = log.epochs[i];
  g.tail = kRegionDataOffset;
  if (i < w.regions().size()) g = w.regions()[i];
  // Whether the record at `old` is older than (id, sequence), or not a
  // record of `id` at all (then it is replaced).
  auto older = [&](uint64_t old, uint64_t id, uint64_t sequence) {
    const auto [r, off] = Location::Unpack(old);
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
        if (!IsPadding(rec.header.type)) {
          const uint64_t id = rec.header.id, seq = rec.header.sequence;
          if (!w.Upsert(id, Location::Pack(i, rec.offset),
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
  if (full &&
      !Grow(OffsetIndex::SlotsFor(2 * w.entries()), w.region_capacity(), stop))
    return false;
  // Damage before `to` ends the coverage of this region there: the
  // open-time scan reports it.
  return progress && (res.stopped || end >= to);
}

}  // namespace recmap
