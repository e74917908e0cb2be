// The I/O seam: every system call recmap makes on a store file, its index
// files and their directory goes through here, so that tests can make the
// k-th call of a kind fail (tests/crash/io_fault_test.cc,
// tests/crash/seam_fault_test.cc) and see the
// failure reach the caller as a Status naming the operation and the path.
// Modelled on LevelDB's Env, as free functions: recmap runs on Linux only,
// and a global hook is all its tests need.
#ifndef RECMAP_STORE_FILE_OPS_H_
#define RECMAP_STORE_FILE_OPS_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace recmap::io {

enum class Op {
  kOpen,
  kFallocate,
  kFtruncate,
  kMsync,
  kFdatasync,
  kFsyncDir,
  kWriteDurable,  // WriteDurable: a write with a ranged fdatasync
  kWrite,         // Write: a plain pwrite (index files)
  kStat,          // Stat, Fstat
  kRename,
  kUnlink,  // Unlink, UnlinkIfPresent
  kMmap,    // Map (file and anonymous mappings)
  kMadvise,
  kLock,  // FcntlLock taking or testing a lock (never a release)
  kRead,  // Read: pread
  kCount
};
const char* OpName(Op op);

// A hook consulted before each operation; returning a non-zero errno makes
// the operation fail with that errno (also left in `errno`) without being
// performed. Close and Unmap are never failed: their callers cannot act on
// a failure. Not
// thread-safe to install; install before opening stores.
using FaultHook = int (*)(Op op, void* arg);
void SetFaultHook(FaultHook hook, void* arg);
// Called after WriteDurable succeeded, with the range it made durable (a
// test modelling what a disk holds after a power cut needs to know that
// only this range, and the file size, reached the disk). Same rules as
// SetFaultHook.
using DurableRangeHook = void (*)(uint64_t offset, uint64_t len, void* arg);
void SetDurableRangeHook(DurableRangeHook hook, void* arg);

// Maps an errno from operation `what` on `path` to a Status with a message
// naming both (ENOSPC/EFBIG/EDQUOT: ResourceExhausted; EACCES/EPERM:
// PermissionDenied; ENOENT: NotFound; others Internal).
absl::Status ErrnoStatus(int err, const std::string& what,
                         const std::string& path);

// Each returns OK or a status from ErrnoStatus. EINTR is retried. None of
// them raises SIGXFSZ: a size past RLIMIT_FSIZE fails with EFBIG
// (ResourceExhausted) before the call is made.
absl::Status Open(const std::string& path, int flags, int mode, int* fd);
// Allocates [offset, offset+len): blocks are reserved, so that stores
// through a writable mapping of the range cannot fault for lack of space
// (SIGBUS). Where the file system has no fallocate, the part past the end
// of the file is written with zeros instead (the part inside is left as
// it is).
absl::Status Allocate(int fd, uint64_t offset, uint64_t len,
                      const std::string& path);
absl::Status Truncate(int fd, uint64_t size, const std::string& path);
// Makes [offset, offset+len) read as zeros, keeping it allocated.
absl::Status ZeroRange(int fd, uint64_t offset, uint64_t len,
                       const std::string& path);
absl::Status Msync(void* addr, size_t len, const std::string& path);
absl::Status Fdatasync(int fd, const std::string& path);
// Writes [data, data+len) at `offset` and makes those bytes durable, with
// the metadata needed to read them back (pwritev2 RWF_DSYNC: a ranged
// fdatasync that leaves the file's other dirty pages alone; pwrite +
// fdatasync where the kernel lacks it). Its own kind for fault injection.
// A short write is an error.
absl::Status WriteDurable(int fd, uint64_t offset, const void* data, size_t len,
                          const std::string& path);
// Writes [data, data+len) at `offset` with pwrite (retrying short
// writes): the way recmap writes files it does not map writable, so that
// a full disk is an error (ENOSPC), never a SIGBUS.
absl::Status Write(int fd, uint64_t offset, const void* data, size_t len,
                   const std::string& path);
// fsyncs the directory holding `path`, making a create or rename durable.
absl::Status SyncParentDir(const std::string& path);

// Reads up to `len` bytes at `offset` with pread (retrying short reads);
// `*got` is the count read, less than `len` only at the end of the file.
absl::Status Read(int fd, uint64_t offset, void* buf, size_t len,
                  const std::string& path, size_t* got);
// stat(2) of `path`; fstat(2) of `fd` (open on `path`). NotFound if there
// is no such file (ENOENT, ENOTDIR).
absl::Status Stat(const std::string& path, struct stat* st);
absl::Status Fstat(int fd, const std::string& path, struct stat* st);
// rename(2); the message names both paths.
absl::Status Rename(const std::string& from, const std::string& to);
// unlink(2): NotFound if there is no such file. UnlinkIfPresent: OK then.
absl::Status Unlink(const std::string& path);
absl::Status UnlinkIfPresent(const std::string& path);
// close(2), not retried on EINTR (Linux has closed the descriptor by then);
// its error is dropped: every write recmap relies on was synced before.
void Close(int fd);

// mmap(2): `*out` gets the mapping. `fd` -1 with MAP_ANONYMOUS maps no
// file (`path` names what the memory is for in a message).
absl::Status Map(void* addr, size_t len, int prot, int flags, int fd,
                 uint64_t offset, const std::string& path, void** out);
// munmap(2), its error dropped (only a bad range, a bug, can fail).
void Unmap(void* addr, size_t len);
// madvise(2), retried on EINTR.
absl::Status Advise(void* addr, size_t len, int advice,
                    const std::string& path);

// fcntl(2) with an F_OFD_* lock command: 0 or the errno, which the lock
// callers (file_lock.h) need raw to tell a lock held elsewhere (EAGAIN,
// EACCES) from a failure. F_OFD_SETLKW is retried on EINTR. A release
// (F_UNLCK) is never failed by the hook: it would leave the lock held, and
// the next waiter of the same process blocked for good.
int FcntlLock(int fd, int cmd, struct flock* fl);

}  // namespace recmap::io

#endif  // RECMAP_STORE_FILE_OPS_H_
