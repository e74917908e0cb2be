// Open-file-description (OFD) byte-range locks: held per open file
// description, released by the kernel when the last descriptor closes --
// including when the process is killed. recmap locks single bytes far past
// the end of the data (they need not exist) to name its locks.
#ifndef RECMAP_STORE_FILE_LOCK_H_
#define RECMAP_STORE_FILE_LOCK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format.h"

namespace recmap {

// The lock bytes (kLock*) are part of the format: format.h.
enum class LockKind { kShared, kExclusive };

// Takes the lock without waiting. Returns true if taken, false if another
// open file description holds a conflicting lock.
absl::StatusOr<bool> TryLock(int fd, uint64_t byte, LockKind kind);
// Waits for the lock.
absl::Status Lock(int fd, uint64_t byte, LockKind kind);
absl::Status Unlock(int fd, uint64_t byte);
// True if an open file description other than `fd`'s holds a lock that
// conflicts with `kind` on `byte`. Works on read-only descriptors.
absl::StatusOr<bool> IsLockedByOther(int fd, uint64_t byte, LockKind kind);

}  // namespace recmap

#endif  // RECMAP_STORE_FILE_LOCK_H_
