// Every system call recmap makes on a store file goes through here, so that
// tests can make the k-th call of a kind fail (tests/fault_injection_test).
#ifndef RECMAP_STORE_FILE_OPS_H_
#define RECMAP_STORE_FILE_OPS_H_

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
  kCount
};
const char* OpName(Op op);

// A hook consulted before each operation; returning a non-zero errno makes
// the operation fail with that errno without being performed. Not
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

}  // namespace recmap::io

#endif  // RECMAP_STORE_FILE_OPS_H_
