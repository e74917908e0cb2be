#include "file_lock.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "file_ops.h"

namespace recmap {
namespace {

struct flock MakeLock(uint64_t byte, short type) {
  struct flock fl;
  std::memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(byte);
  fl.l_len = 1;
  fl.l_pid = 0;  // required for OFD locks
  return fl;
}

short TypeOf(LockKind kind) {
  return kind == LockKind::kShared ? F_RDLCK : F_WRLCK;
}

absl::Status LockError(int err, uint64_t byte) {
  return absl::InternalError(absl::StrCat("fcntl(OFD lock ", byte - kLockBase,
                                          "): ", std::strerror(err)));
}

}  // namespace

absl::StatusOr<bool> TryLock(int fd, uint64_t byte, LockKind kind) {
  struct flock fl = MakeLock(byte, TypeOf(kind));
  const int e = io::FcntlLock(fd, F_OFD_SETLK, &fl);
  if (e == 0) return true;
  if (e == EAGAIN || e == EACCES) return false;
  return LockError(e, byte);
}

absl::Status Lock(int fd, uint64_t byte, LockKind kind) {
  struct flock fl = MakeLock(byte, TypeOf(kind));
  if (int e = io::FcntlLock(fd, F_OFD_SETLKW, &fl)) return LockError(e, byte);
  return absl::OkStatus();
}

absl::Status Unlock(int fd, uint64_t byte) {
  struct flock fl = MakeLock(byte, F_UNLCK);
  if (int e = io::FcntlLock(fd, F_OFD_SETLK, &fl)) return LockError(e, byte);
  return absl::OkStatus();
}

absl::StatusOr<bool> IsLockedByOther(int fd, uint64_t byte, LockKind kind) {
  struct flock fl = MakeLock(byte, TypeOf(kind));
  if (int e = io::FcntlLock(fd, F_OFD_GETLK, &fl)) return LockError(e, byte);
  return fl.l_type != F_UNLCK;
}

}  // namespace recmap
