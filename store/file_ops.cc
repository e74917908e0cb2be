#include "file_ops.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace recmap::io {
namespace {

FaultHook g_hook = nullptr;
void* g_hook_arg = nullptr;
DurableRangeHook g_range_hook = nullptr;
void* g_range_hook_arg = nullptr;

int Injected(Op op) { return g_hook ? g_hook(op, g_hook_arg) : 0; }

}  // namespace

const char* OpName(Op op) {
  switch (op) {
    case Op::kOpen:
      return "open";
    case Op::kFallocate:
      return "fallocate";
    case Op::kFtruncate:
      return "ftruncate";
    case Op::kMsync:
      return "msync";
    case Op::kFdatasync:
      return "fdatasync";
    case Op::kFsyncDir:
      return "fsync(dir)";
    case Op::kWriteDurable:
      return "pwritev2(RWF_DSYNC)";
    case Op::kCount:
      break;
  }
  return "?";
}

void SetDurableRangeHook(DurableRangeHook hook, void* arg) {
  g_range_hook = hook;
  g_range_hook_arg = arg;
}

void SetFaultHook(FaultHook hook, void* arg) {
  g_hook = hook;
  g_hook_arg = arg;
}

absl::Status ErrnoStatus(int err, const std::string& what,
                         const std::string& path) {
  std::string msg = absl::StrCat(what, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOENT:
    // A path that does not resolve to a file: no such file, as far as the
    // caller can tell (the message says which).
    case ENOTDIR:
    case ELOOP:
    case ENAMETOOLONG:
      return absl::NotFoundError(msg);
    case EISDIR:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::Status Open(const std::string& path, int flags, int mode, int* fd) {
  if (int e = Injected(Op::kOpen)) return ErrnoStatus(e, "open", path);
  int r;
  do {
    r = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus(errno, "open", path);
  *fd = r;
  return absl::OkStatus();
}

absl::Status Allocate(int fd, uint64_t offset, uint64_t len,
                      const std::string& path) {
  if (int e = Injected(Op::kFallocate))
    return ErrnoStatus(e, "fallocate", path);
  int r;
  do {
    r = ::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(len));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return absl::OkStatus();
  if (errno != EOPNOTSUPP) return ErrnoStatus(errno, "fallocate", path);
  return Truncate(fd, offset + len, path);
}

absl::Status Truncate(int fd, uint64_t size, const std::string& path) {
  if (int e = Injected(Op::kFtruncate))
    return ErrnoStatus(e, "ftruncate", path);
  int r;
  do {
    r = ::ftruncate(fd, static_cast<off_t>(size));
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus(errno, "ftruncate", path);
  return absl::OkStatus();
}

absl::Status ZeroRange(int fd, uint64_t offset, uint64_t len,
                       const std::string& path) {
  if (len == 0) return absl::OkStatus();
  if (int e = Injected(Op::kFallocate))
    return ErrnoStatus(e, "fallocate", path);
  const auto off = static_cast<off_t>(offset);
  const auto n = static_cast<off_t>(len);
  if (::fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, n) ==
      0) {
    return absl::OkStatus();
  }
  // tmpfs and some others only punch holes; re-allocate afterwards so a
  // later write into the range cannot fail for lack of space (SIGBUS).
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, n) !=
      0) {
    return ErrnoStatus(errno, "fallocate(punch hole)", path);
  }
  if (::fallocate(fd, 0, off, n) != 0 && errno != EOPNOTSUPP) {
    return ErrnoStatus(errno, "fallocate", path);
  }
  return absl::OkStatus();
}

absl::Status Msync(void* addr, size_t len, const std::string& path) {
  if (int e = Injected(Op::kMsync)) return ErrnoStatus(e, "msync", path);
  if (::msync(addr, len, MS_SYNC) != 0)
    return ErrnoStatus(errno, "msync", path);
  return absl::OkStatus();
}

absl::Status Fdatasync(int fd, const std::string& path) {
  if (int e = Injected(Op::kFdatasync))
    return ErrnoStatus(e, "fdatasync", path);
  int r;
  do {
    r = ::fdatasync(fd);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ErrnoStatus(errno, "fdatasync", path);
  return absl::OkStatus();
}

absl::Status WriteDurable(int fd, uint64_t offset, const void* data, size_t len,
                          const std::string& path) {
  if (int e = Injected(Op::kWriteDurable))
    return ErrnoStatus(e, OpName(Op::kWriteDurable), path);
  iovec iov{const_cast<void*>(data), len};
  ssize_t r;
  bool fallback = false;
  do {
    r = ::pwritev2(fd, &iov, 1, static_cast<off_t>(offset), RWF_DSYNC);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
    fallback = true;
    do {
      r = ::pwrite(fd, data, len, static_cast<off_t>(offset));
    } while (r < 0 && errno == EINTR);
  }
  if (r < 0) return ErrnoStatus(errno, OpName(Op::kWriteDurable), path);
  if (static_cast<size_t>(r) != len) {
    return ErrnoStatus(EIO,
                       absl::StrCat(OpName(Op::kWriteDurable), " (short: ", r,
                                    " of ", len, " bytes)"),
                       path);
  }
  if (fallback) {
    do {
      r = ::fdatasync(fd);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return ErrnoStatus(errno, OpName(Op::kWriteDurable), path);
  }
  if (g_range_hook != nullptr) g_range_hook(offset, len, g_range_hook_arg);
  return absl::OkStatus();
}

absl::Status SyncParentDir(const std::string& path) {
  if (int e = Injected(Op::kFsyncDir))
    return ErrnoStatus(e, "fsync(dir)", path);
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open(dir)", dir);
  int r = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (r != 0) return ErrnoStatus(err, "fsync(dir)", dir);
  return absl::OkStatus();
}

}  // namespace recmap::io
