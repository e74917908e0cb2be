// Internals of compaction (store/include/recmap/compaction.h is the API):
// the lock protocol that makes it offline, and the verification of a
// compacted copy against its original (compaction_verify.cc). Not
// installed.
#ifndef RECMAP_STORE_COMPACTION_H_
#define RECMAP_STORE_COMPACTION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/compaction.h"
#include "recmap/store.h"

namespace recmap {

// The steps of a compaction (recmap/compaction.h), in order.
enum class CompactionStep {
  kLocked,        // locks taken, no writer open
  kCopied,        // every live record written to the new file
  kSynced,        // the new file's data and metadata are durable
  kDirSynced,     // the new file's directory entry is durable
  kVerified,      // the new file was read back and matches the original
  kRenamed,       // the new file replaced the original (not with `output`)
  kRenameSynced,  // the rename is durable
};
const char* CompactionStepName(CompactionStep step);

// Compact, calling `step_hook` (if set) after each step: the crash tests
// kill the process there.
absl::StatusOr<CompactionResult> Compact(
    const std::string& path, const CompactionOptions& options,
    const std::function<void(CompactionStep)>& step_hook);

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
// (packed locations, location.h, of puts with distinct ids, in the order they
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
