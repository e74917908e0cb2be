// Offline recovery of a store file with a chosen mode, reporting what it
// drops (or, in a dry run, would drop) by region and offset. Used by
// `recmap recover`.
#ifndef RECMAP_STORE_RECOVER_H_
#define RECMAP_STORE_RECOVER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "recmap/options.h"
#include "verify.h"

namespace recmap {

// A byte range recovery leaves out of the log.
struct RecoverDrop {
  uint32_t region = 0;
  uint64_t file_offset = 0;  // first byte dropped
  uint64_t bytes = 0;
  std::string why;  // "torn tail: checksum mismatch", "region header: ..."
  bool published = false;  // below the committed tail: records were lost
};

struct RecoverResult {
  bool dry_run = false;
  RecoveryMode mode = RecoveryMode::kTolerateTornTail;
  uint32_t regions = 0;
  uint64_t records_kept = 0;
  uint64_t trailing_bytes = 0;  // bytes past the last whole region
  std::vector<RecoverDrop> drops;
  // After a recovery (not a dry run): the damage VerifyStore still finds
  // (verify.h), e.g. records a salvage kept beside damaged bytes it could
  // not cut away. Empty means `recmap verify` will call the store clean.
  std::vector<std::string> remaining_damage;
};

struct RecoverOptions {
  RecoveryMode mode = RecoveryMode::kTolerateTornTail;
  // Only report: the file is opened read-only and never modified.
  bool dry_run = false;
  // If set, called on the calling thread with how far the recovery has
  // come over its steps, each counted as the file's bytes: the read that
  // plans (reported when done), then without dry_run the recovering open
  // (reported when done) and the check (VerifyStore's progress).
  VerifyProgressFn progress;
};

// Recovers `path` in `options.mode`. Without dry_run the store must have no
// live writer (FailedPrecondition otherwise): the recovery is the one a
// first writer runs at open, and its cuts become permanent (records past a
// damage cut are zeroed). Errors: those of Store::Open -- in absolute mode,
// DataLoss for any damage.
[[nodiscard]] absl::StatusOr<RecoverResult> RecoverStore(
    const std::string& path, const RecoverOptions& options);

const char* RecoveryModeName(RecoveryMode mode);

}  // namespace recmap

#endif  // RECMAP_STORE_RECOVER_H_
