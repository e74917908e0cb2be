// Open-file-description (OFD) byte-range locks: held per open file
// description, released by the kernel when the last descriptor closes --
// including when the process is killed. recmap locks single bytes far past
// the end of the data (they need not exist) to name its locks.
#ifndef RECMAP_STORE_FILE_LOCK_H_
#define RECMAP_STORE_FILE_LOCK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace recmap {

inline constexpr uint64_t kLockBase = uint64_t{1} << 62;
// Held exclusively while a writable handle recovers the file at open.
inline constexpr uint64_t kLockRecovery = kLockBase + 0;
// Held exclusively while the file grows by a region.
inline constexpr uint64_t kLockGrowth = kLockBase + 1;
// Every writable handle holds it shared; exclusive means "no writer is open".
inline constexpr uint64_t kLockWriters = kLockBase + 2;
// Held exclusively by compaction while it copies the store.
inline constexpr uint64_t kLockCompaction = kLockBase + 3;
// Held exclusively while a handle writes the persisted index file in the
// background (index_persister.cc): one writer of the file at a time.
inline constexpr uint64_t kLockIndex = kLockBase + 4;
// Region i is owned by whoever holds kLockRegionBase + i exclusively.
inline constexpr uint64_t kLockRegionBase = kLockBase + 4096;

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
