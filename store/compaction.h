// Internals of compaction (store/include/recmap/compaction.h is the API):
// the lock protocol that makes it offline, and the verification of a
// compacted copy against its original. Not installed.
#ifndef RECMAP_STORE_COMPACTION_H_
#define RECMAP_STORE_COMPACTION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "recmap/store.h"

namespace recmap {

// Takes the locks that make `fd` (an O_RDWR descriptor of `path`) the
// compactor: kLockCompaction exclusively (FailedPrecondition if another
// compaction holds it), then kLockRecovery exclusively (waits for an opener
// that is recovering; from then on new writable opens wait), then checks
// that no handle holds kLockWriters (FailedPrecondition naming the owner
// pids of live regions if one does). The locks are released by closing
// `fd`.
absl::Status LockForCompaction(int fd, const std::string& path);

// Checks that `copy` holds exactly the live records of `original`: the same
// ids, sequence numbers and values, nothing else (no tombstones, no other
// versions). Errors: DataLoss naming the first difference.
absl::Status VerifyCompacted(Store& original, Store& copy,
                             uint64_t expected_records);

}  // namespace recmap

#endif  // RECMAP_STORE_COMPACTION_H_
