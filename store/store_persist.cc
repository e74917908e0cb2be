// Adopting the persisted offset index at open (persisted_index.h states the
// trust rules, CheckCoverage in index_persister.h checks them against the
// log; IndexPersister writes the file).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "file_lock.h"
#include "store_rep.h"

namespace recmap {

void StoreRep::AdoptPersistedIndex() {
  if (!options_.persist_index ||
      options_.recovery_mode != RecoveryMode::kTolerateTornTail)
    return;
  // Shared: no background writer is in the middle of a batch while the
  // file is validated (one that died in one left a mark, which Load sees).
  if (!Lock(fd_, kLockIndex, LockKind::kShared).ok()) return;
  absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
      PersistedIndex::Load(IndexPathFor(path_), header_.uuid, region_size());
  (void)Unlock(fd_, kLockIndex);
  if (ix.ok() && (*ix)->was_updating() && !read_only()) {
    // Left by a writer killed in a batch: a writable opener repairs the
    // page sums first, so that the file is checked whole again.
    ix->reset();
    if (!Lock(fd_, kLockIndex, LockKind::kExclusive).ok()) return;
    (void)PersistedIndexWriter::Open(IndexPathFor(path_), header_.uuid,
                                     region_size());
    ix = PersistedIndex::Load(IndexPathFor(path_), header_.uuid, region_size());
    (void)Unlock(fd_, kLockIndex);
  }
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
  if (absl::Status s = CheckCoverage(regions_, covered); !s.ok()) {
    recovery_.persisted_index_rejected =
        absl::StrCat(IndexPathFor(path_), ": ", s.message());
    return;
  }
  index_.Adopt(std::move(*ix));
  recovery_.persisted_index_used = true;
}

}  // namespace recmap
