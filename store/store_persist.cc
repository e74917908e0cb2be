// Adopting the persisted offset index at open and writing it at a clean
// close (persisted_index.h states the trust rules).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "file_lock.h"
#include "store_rep.h"

namespace recmap {

void StoreRep::AdoptPersistedIndex() {
  if (!options_.persist_index ||
      options_.recovery_mode != RecoveryMode::kTolerateTornTail)
    return;
  absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
      PersistedIndex::Load(IndexPathFor(path_), header_.uuid, region_size());
  if (!ix.ok()) {
    if (!absl::IsNotFound(ix.status()))
      recovery_.persisted_index_rejected = std::string(ix.status().message());
    return;
  }
  const std::vector<IndexedRegion>& covered = (*ix)->regions();
  for (uint32_t i = 0; i < covered.size() && i < known_regions(); ++i) {
    if (!regions_[i].formatted || regions_[i].damaged) {
      recovery_.persisted_index_rejected =
          absl::StrCat(IndexPathFor(path_), ": region ", i, " is not usable");
      return;
    }
  }
  if (recovery_.trailing_bytes != 0 && covered.size() >= known_regions()) {
    // The file was cut short inside a region the index covers: its entries
    // there may point past the end of what is left.
    recovery_.persisted_index_rejected = absl::StrCat(
        IndexPathFor(path_), ": the store file is cut short inside region ",
        known_regions() - 1, ", which the index covers");
    return;
  }
  if (absl::Status s = CheckCoverage(covered); !s.ok()) {
    recovery_.persisted_index_rejected =
        absl::StrCat(IndexPathFor(path_), ": ", s.message());
    return;
  }
  base_ = std::move(*ix);
  base_regions_ = static_cast<uint32_t>(covered.size());
  recovery_.persisted_index_used = true;
}

bool StoreRep::RegionAt(uint32_t i, RegionRef* ref, uint64_t* epoch) const {
  char* base = map_.base() + RegionOffset(i);
  RegionHeader rh;
  if (!rh.DecodeFrom(base, kPageSize).ok() || rh.index != i ||
      rh.file_uuid != header_.uuid || rh.region_size != region_size())
    return false;
  ref->base = base;
  ref->size = region_size();
  ref->index = i;
  ref->seed = RegionSeed(header_.uuid, i, rh.epoch);
  *epoch = rh.epoch;
  return true;
}

absl::Status StoreRep::CheckCoverage(
    const std::vector<IndexedRegion>& covered) const {
  if (covered.size() > known_regions()) {
    return absl::FailedPreconditionError(
        absl::StrCat("covers ", covered.size(), " regions; the store has ",
                     known_regions()));
  }
  for (uint32_t i = 0; i < covered.size(); ++i) {
    const IndexedRegion& g = covered[i];
    RegionRef ref;
    uint64_t epoch = 0;
    if (!RegionAt(i, &ref, &epoch)) {
      return absl::FailedPreconditionError(
          absl::StrCat("region ", i, " is not usable"));
    }
    if (epoch != g.epoch) {
      return absl::FailedPreconditionError(
          absl::StrCat("region ", i, " was reformatted (epoch ", epoch,
                       ", index has ", g.epoch, ")"));
    }
    // A covered tail of kRegionDataOffset covers nothing and needs no
    // durable tail.
    if (g.tail < kRegionDataOffset ||
        (g.tail > kRegionDataOffset && ref.DurableTail() < g.tail)) {
      return absl::FailedPreconditionError(
          absl::StrCat("region ", i, " covered tail ", g.tail,
                       " is past its durable tail ", ref.DurableTail()));
    }
  }
  return absl::OkStatus();
}

void StoreRep::PersistIndex() {
  if (read_only() || !options_.persist_index) return;
  // Only the last writable handle, with no opener recovering: then nobody
  // can append while the index is built (this handle's own Writers are
  // gone by contract), and the tails it records are the final ones.
  absl::StatusOr<bool> got = TryLock(fd_, kLockRecovery, LockKind::kExclusive);
  if (!got.ok() || !*got) return;
  got = TryLock(fd_, kLockWriters, LockKind::kExclusive);
  if (!got.ok() || !*got) return;  // the closing fd drops the locks

  std::vector<IndexedRegion> covered;
  std::vector<OffsetIndex::Slot> entries;
  uint64_t records = 0;
  {
    absl::MutexLock lock(&index_mu_);
    RefreshLocked();
    const uint32_t n = known_regions();
    bool changed = base_ == nullptr || index_.size() != 0 || n != base_regions_;
    for (uint32_t i = 0; i < n; ++i) {
      const RegionInfo& ri = regions_[i];
      RegionHeader rh;
      const uint64_t end = ri.indexed_end.load(std::memory_order_acquire);
      // Only a log fully indexed, undamaged, is worth a persisted index.
      if (!ri.formatted || ri.damaged ||
          !rh.DecodeFrom(ri.ref.base, kPageSize).ok() ||
          end != ri.ref.committed_tail().load(std::memory_order_acquire))
        return;
      if (i < base_regions_ && base_->regions()[i].tail != end) changed = true;
      covered.push_back(
          IndexedRegion{rh.epoch, end, ri.records, ri.fill, ri.payload_bytes});
      records += ri.records;
    }
    if (!changed || records < options_.persist_index_min_records) return;
    entries.reserve(index_.size() + (base_ ? base_->entries() : 0));
    // A wrong entry in the old file must not be carried into the new one.
    if (!ForEachLatestLocked([&](uint64_t id, uint64_t loc) {
          entries.push_back(OffsetIndex::Slot{id, loc});
        }))
      return;
  }
  // The records the index covers must be durable before the index is: a
  // power loss must not leave an index pointing at lost records. Sync
  // also moves every durable tail to the committed tail, which the next
  // open checks.
  if (!Sync().ok()) return;
  const uint64_t max_seq = next_sequence().load(std::memory_order_acquire) - 1;
  // The index being replaced is still mapped (base_); the new file is
  // written beside it and renamed over it.
  (void)PersistedIndex::Write(IndexPathFor(path_), header_.uuid, region_size(),
                              max_seq, covered, entries);
}

}  // namespace recmap
