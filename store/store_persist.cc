// Adopting the persisted offset index at open (persisted_index.h states the
// trust rules; index_persister.cc writes it).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "file_lock.h"
#include "file_ops.h"
#include "store_rep.h"

namespace recmap {

void StoreRep::AdoptPersistedIndex() {
  if (!options_.persist_index ||
      options_.recovery_mode != RecoveryMode::kTolerateTornTail)
    return;
  // No background writer is in the middle of a batch while the file is
  // validated (one that died in one left a mark, which Load sees). A
  // writable opener holds the lock exclusive: it may repair or remove the
  // file.
  const LockKind kind = read_only() ? LockKind::kShared : LockKind::kExclusive;
  if (!Lock(fd_, kLockIndex, kind).ok()) return;
  absl::Status s = LoadPersistedIndex();
  if (!s.ok() && !absl::IsNotFound(s)) {
    recovery_.persisted_index_rejected = std::string(s.message());
    if (!read_only()) {
      // This open's recovery rewrites the tails it cannot trust; a file that
      // does not describe the log now may describe it afterwards (a damaged
      // committed tail restored to the end of the log) and be trusted then
      // for records it never held. Removed, it is built again from the log.
      (void)io::UnlinkIfPresent(IndexPathFor(path_));
    }
  }
  (void)Unlock(fd_, kLockIndex);
}

absl::Status StoreRep::LoadPersistedIndex() {
  absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
      PersistedIndex::Load(IndexPathFor(path_), header_.uuid, region_size());
  if (ix.ok() && (*ix)->was_updating() && !read_only()) {
    // Left by a writer killed in a batch: a writable opener repairs the
    // page sums first, so that the file is checked whole again.
    ix->reset();
    (void)PersistedIndexWriter::Open(IndexPathFor(path_), header_.uuid,
                                     region_size());
    ix = PersistedIndex::Load(IndexPathFor(path_), header_.uuid, region_size());
  }
  if (!ix.ok()) return ix.status();
  const std::vector<IndexedRegion>& covered = (*ix)->regions();
  for (uint32_t i = 0; i < covered.size() && i < known_regions(); ++i) {
    if (!regions_[i].formatted || regions_[i].damaged) {
      return absl::FailedPreconditionError(
          absl::StrCat(IndexPathFor(path_), ": region ", i, " is not usable"));
    }
  }
  if (recovery_.trailing_bytes != 0 && covered.size() >= known_regions()) {
    // The file was cut short inside a region the index covers: its entries
    // there may point past the end of what is left.
    return absl::FailedPreconditionError(absl::StrCat(
        IndexPathFor(path_), ": the store file is cut short inside region ",
        known_regions() - 1, ", which the index covers"));
  }
  if (absl::Status s = CheckCoverage(covered); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(IndexPathFor(path_), ": ", s.message()));
  }
  base_ = std::move(*ix);
  base_regions_ = static_cast<uint32_t>(covered.size());
  recovery_.persisted_index_used = true;
  return absl::OkStatus();
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

void StoreRep::CatchUpIndexAtClose() {
  if (read_only() || !options_.persist_index ||
      options_.recovery_mode != RecoveryMode::kTolerateTornTail)
    return;
  const std::atomic<bool> never{false};
  if (!options_.persist_index_in_background) {
    PersistIndexPass(never, /*to_tail=*/true);
    return;
  }
  // The background writer has stopped. What it left uncovered is at most
  // kOpenRegionStepBytes per region being written, unless it fell behind:
  // a little is covered now (so that the next open scans nothing), a lot
  // is left to the next open rather than make the close wait for it.
  uint64_t uncovered = 0;
  static const std::vector<IndexedRegion> kNone;
  const std::vector<IndexedRegion>& cov = index_writer_ != nullptr
                                              ? index_writer_->regions()
                                          : base_ != nullptr ? base_->regions()
                                                             : kNone;
  for (uint32_t i = 0; i < known_regions(); ++i) {
    RegionRef ref;
    uint64_t epoch = 0;
    if (!RegionAt(i, &ref, &epoch)) break;
    const uint64_t t = ref.committed_tail().load(std::memory_order_acquire);
    const uint64_t c = i < cov.size() ? cov[i].tail : kRegionDataOffset;
    if (ref.PlausibleTail(t) && t > c) uncovered += t - c;
  }
  if (uncovered != 0 && uncovered <= kCloseCatchUpBytes)
    PersistIndexPass(never, /*to_tail=*/true);
}

}  // namespace recmap
