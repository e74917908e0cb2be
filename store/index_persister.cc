// Writing the persisted index in the background, as regions seal, so that
// an open after a crash scans only the log past the covered tails (an
// index written only at a clean close never exists for a store whose
// writers never close cleanly). See docs/DESIGN.md, "The persisted index".
//
// Invariants:
// - The file written covers, for each region, a prefix of its log: a
//   sealed region up to its final tail, any other region as far as the
//   index on disk covered it (or not at all). Each entry is the latest
//   record of its id within the covered prefixes, built by merging the
//   index on disk (only if it passes the open-time trust rules) with the
//   records between its covered tails and the new ones.
// - The records newly covered are durable, and so are their regions'
//   durable tails (>= the covered tails), before the file is renamed into
//   place: an opener after a power loss trusts it only on that condition.
//   Sealed regions are flushed by range (msync), never the whole file.
// - Sealed regions never change while a writable handle is open (only
//   a recovering first writer or compaction reformats regions, and both
//   exclude live writers), so a scan of a sealed region's log holds.
// - kLockIndex: one background writer of the file at a time; a clean close
//   needs no writer live, so no background writer either.
// - This runs on the handle's BackgroundTask thread and reads the regions
//   only through the mapping (RegionAt), never the indexing thread's
//   RegionInfo fields or index_mu_: appends and lookups never wait for it.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "file_lock.h"
#include "file_ops.h"
#include "store_rep.h"

namespace recmap {

void StoreRep::RegionSealed() {
  if (index_task_ == nullptr) return;
  // A store that cannot hold the floor of records yet (each takes at
  // least RecordSize(0) bytes) needs no thread.
  if (uint64_t{known_regions()} * (region_size() / RecordSize(0)) <
      std::max(options_.persist_index_min_records,
               options_.persist_index_background_min_records))
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

void StoreRep::PersistSealedIndex(const std::atomic<bool>& stop) {
  if (!SyncError().ok()) return;
  absl::StatusOr<bool> got = TryLock(fd_, kLockIndex, LockKind::kExclusive);
  if (!got.ok() || !*got) return;  // another handle is writing it
  struct Unlocker {
    int fd;
    ~Unlocker() { (void)Unlock(fd, kLockIndex); }
  } unlocker{fd_};
  (void)LoadNewRegions();
  const uint32_t n = known_regions();
  const std::string path = IndexPathFor(path_);

  // What the index on disk covers, if it still describes this log (another
  // handle may have written it since this one last looked). Only its
  // header is read here: most runs stop at the rate limit.
  std::vector<IndexedRegion> cov;
  if (absl::StatusOr<std::vector<IndexedRegion>> c =
          PersistedIndex::ReadCoverage(path, header_.uuid, region_size());
      c.ok() && CheckCoverage(*c).ok()) {
    cov = std::move(*c);
  }

  // The coverage to write (`next`), and the sealed parts to add (entries
  // of tallies_: each part is scanned once and kept until written).
  std::vector<IndexedRegion> next;
  std::vector<RegionRef> refs;
  std::vector<const SealedTally*> adds;
  uint64_t covered_records = 0, new_records = 0;
  uint32_t last_covered = 0;  // regions [0, last_covered) are written
  auto plan = [&]() -> bool {
    next.clear();
    refs.clear();
    adds.clear();
    covered_records = new_records = 0;
    last_covered = 0;
    std::vector<SealedTally> tallies;
    for (uint32_t i = 0; i < n; ++i) {
      if (stop.load(std::memory_order_acquire)) return false;
      RegionRef ref;
      uint64_t epoch = 0;
      if (!RegionAt(i, &ref, &epoch)) break;  // coverage ends before it
      IndexedRegion g;
      g.epoch = epoch;
      g.tail = kRegionDataOffset;
      if (i < cov.size()) g = cov[i];  // same epoch: checked
      covered_records += g.records;
      next.push_back(g);
      refs.push_back(ref);
      if (g.tail > kRegionDataOffset) last_covered = i + 1;
      if (!ref.sealed()) continue;
      // The sealed word is stored after the owner's last tail store.
      const uint64_t to = ref.committed_tail().load(std::memory_order_acquire);
      if (!ref.PlausibleTail(to) || to <= g.tail) continue;
      SealedTally t;
      auto it = std::find_if(tallies_.begin(), tallies_.end(), [&](auto& x) {
        return x.region == i && x.epoch == epoch && x.from == g.tail &&
               x.to == to;
      });
      if (it != tallies_.end()) {
        t = *it;
      } else {
        t.region = i;
        t.epoch = epoch;
        t.from = g.tail;
        t.to = to;
        ScanResult res =
            ScanRegion(ref, g.tail, to, false, [&](const ScannedRecord& rec) {
              t.fill += RecordSize(rec.header.length);
              if (rec.header.type == RecordType::kPadding) return;
              t.records++;
              t.payload_bytes += rec.header.length;
            });
        t.max_sequence = res.max_sequence;
        // A sealed log that does not validate to its tail is left to the
        // open-time scan, which reports it.
        t.whole = res.end == to;
      }
      tallies.push_back(t);
    }
    tallies_ = std::move(tallies);
    for (const SealedTally& t : tallies_) {
      if (!t.whole) continue;
      adds.push_back(&t);
      new_records += t.records;
    }
    return true;
  };
  if (!plan()) return;
  // Rate limit: the file is rewritten whole, so only when the uncovered
  // records are a good part of it.
  if (adds.empty() || new_records == 0 ||
      new_records < std::max({options_.persist_index_min_records,
                              options_.persist_index_background_min_records,
                              covered_records / 4}))
    return;
  // Now the whole file, checksum and all; if it is not the one whose
  // header was read (it cannot change under kLockIndex) or is damaged,
  // rebuild from the log alone.
  std::unique_ptr<PersistedIndex> old;
  if (!cov.empty()) {
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
        PersistedIndex::Load(path, header_.uuid, region_size());
    bool same = ix.ok() && (*ix)->regions().size() == cov.size();
    for (size_t i = 0; same && i < cov.size(); ++i) {
      same = (*ix)->regions()[i].epoch == cov[i].epoch &&
             (*ix)->regions()[i].tail == cov[i].tail;
    }
    if (same) {
      old = std::move(*ix);
    } else {
      cov.clear();
      if (!plan() || adds.empty()) return;
    }
  }

  // Durable first: the records, then each region's durable tail. Ranged
  // flushes: an fdatasync would also write back (and write-protect) the
  // live regions' pages, which their writers are filling.
  for (const SealedTally* t : adds) {
    if (!FlushRange(RegionOffset(t->region) + t->from, t->to - t->from).ok())
      return;
  }
  {
    absl::MutexLock lock(&sync_mu_);
    for (const SealedTally* t : adds) {
      const RegionRef& r = refs[t->region];
      if (r.DurableTail() < t->to) r.SetDurableTail(t->to);
    }
  }
  for (const SealedTally* t : adds) {
    if (!FlushRange(RegionOffset(t->region) + kRegionStatePageOffset, kPageSize)
             .ok())
      return;
  }

  uint64_t max_sequence = old ? old->max_sequence() : 0;
  for (const SealedTally* t : adds) {
    IndexedRegion& g = next[t->region];
    g.tail = t->to;
    g.records += t->records;
    g.fill += t->fill;
    g.payload_bytes += t->payload_bytes;
    max_sequence = std::max(max_sequence, t->max_sequence);
    last_covered = std::max(last_covered, t->region + 1);
  }
  next.resize(last_covered);
  const uint64_t carried = old ? old->entries() : 0;
  absl::StatusOr<std::unique_ptr<PersistedIndexBuilder>> b =
      PersistedIndexBuilder::Create(
          path, header_.uuid, region_size(), last_covered,
          OffsetIndex::SlotsFor(carried + new_records));
  if (!b.ok()) return;
  PersistedIndexBuilder& out = **b;
  bool ok = true;
  uint64_t done = 0;
  if (old != nullptr) {
    old->ForEach([&](uint64_t id, uint64_t loc) {
      if (!ok || (++done % 65536 == 0 && stop.load(std::memory_order_acquire)))
        ok = false;
      else
        ok = out.Put(id, loc);
    });
    old.reset();  // the new file replaces it
  }
  // The sequence of the record at `loc`, 0 if `loc` is not a well-formed
  // record of `id` in the new coverage (an entry of a damaged old index:
  // replaced).
  auto sequence_at = [&](uint64_t loc, uint64_t id) -> uint64_t {
    const uint32_t r = static_cast<uint32_t>(loc >> 40);
    const uint64_t off = (loc & ((uint64_t{1} << 40) - 1)) << 3;
    RecordHeader h;
    if (r >= next.size() || off < kRegionDataOffset ||
        off + kRecordHeaderSize > next[r].tail ||
        !h.DecodeFrom(refs[r].base + off) || h.id != id)
      return 0;
    return h.sequence;
  };
  for (const SealedTally* t : adds) {
    if (!ok || stop.load(std::memory_order_acquire)) {
      ok = false;
      break;
    }
    (void)ScanRegion(
        refs[t->region], t->from, t->to, false, [&](const ScannedRecord& rec) {
          if (!ok || rec.header.type == RecordType::kPadding) return;
          const uint64_t have = out.Find(rec.header.id);
          if (have == 0 ||
              rec.header.sequence > sequence_at(have, rec.header.id))
            ok = out.Put(rec.header.id, Pack(t->region, rec.offset));
        });
  }
  if (!ok) return;  // the builder removes its temporary file
  if (out.Finish(max_sequence, next).ok()) tallies_.clear();
}

}  // namespace recmap
