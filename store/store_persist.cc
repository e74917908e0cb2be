// Adopting the persisted offset index at open (persisted_index.h states the
// trust rules, CheckCoverage in index_persister.h checks them against the
// log; IndexPersister writes the file).
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
  if (absl::Status s = CheckCoverage(regions_, covered); !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(IndexPathFor(path_), ": ", s.message()));
  }
  index_.Adopt(std::move(*ix));
  recovery_.persisted_index_used = true;
  return absl::OkStatus();
}

}  // namespace recmap
