// Internals of compaction (store/include/recmap/compaction.h is the API):
// the lock protocol that makes it offline, and the verification of a
// compacted copy against its original (compaction_verify.cc). Not
// installed.
#ifndef RECMAP_STORE_COMPACTION_H_
#define RECMAP_STORE_COMPACTION_H_

#include <cstdint>
#include <string>
#include <vector>

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
// Both refusals carry the payload kBusyPayload (see IsStoreBusy).
absl::Status LockForCompaction(int fd, const std::string& path);

// The payload type on LockForCompaction's refusals: the store is busy.
inline constexpr char kBusyPayload[] = "recmap.dev/busy";
// True for an error of Compact that says the store is busy (a writer or
// another compaction has it), as opposed to its other FailedPrecondition
// errors, such as a newer format version: a tool's exit code tells them
// apart.
bool IsStoreBusy(const absl::Status& s);

// Checks that `copy` holds exactly the records at `copied` in `original`
// (StoreRep::Pack locations of puts with distinct ids, in the order they
// were written), in that order: each a put with the same id, sequence number
// and value, and nothing else (no tombstones, no padding other than resume
// markers, no other versions). One sequential pass over each log, reading
// every region of `copy` that its handle maps now up to its committed tail
// (regions another handle added are loaded first), without indexing it.
// The copy's records are verified against their checksums; the original's
// at `copied` must have been (they are decoded with bounds checks only).
// Errors: DataLoss naming the first difference, or the copy's damage (an
// unformatted or damaged region, a record that fails below a tail).
absl::Status VerifyCompacted(Store& original,
                             const std::vector<uint64_t>& copied, Store& copy);

}  // namespace recmap

#endif  // RECMAP_STORE_COMPACTION_H_
