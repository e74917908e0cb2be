#include "file_ops.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace recmap::io {
namespace {

FaultHook g_hook = nullptr;
void* g_hook_arg = nullptr;
DurableRangeHook g_range_hook = nullptr;
void* g_range_hook_arg = nullptr;

// The injected errno, also left in errno as the real call would.
int Injected(Op op) {
  if (g_hook == nullptr) return 0;
  const int e = g_hook(op, g_hook_arg);
  if (e != 0) errno = e;
  return e;
}

// EFBIG if a write would reach past RLIMIT_FSIZE, or (`fd` given) if the
// file would grow past it: the kernel would also send SIGXFSZ, which kills
// a process that has not ignored it.
int PastSizeLimit(uint64_t end, int fd = -1) {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_FSIZE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      end <= static_cast<uint64_t>(rl.rlim_cur))
    return 0;
  struct stat st;
  if (fd >= 0 && ::fstat(fd, &st) == 0 &&
      end <= static_cast<uint64_t>(st.st_size))
    return 0;  // no growth: no signal
  return EFBIG;
}

// pwrite of all of [data, data+len) at `offset`; 0 or an errno.
int PwriteAll(int fd, uint64_t offset, const char* data, size_t len) {
  while (len > 0) {
    ssize_t r = ::pwrite(fd, data, len, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;
    data += r;
    len -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return 0;
}

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
    case Op::kWrite:
      return "pwrite";
    case Op::kStat:
      return "stat";  // also names "fstat"
    case Op::kRename:
      return "rename";
    case Op::kUnlink:
      return "unlink";
    case Op::kMmap:
      return "mmap";
    case Op::kMadvise:
      return "madvise";
    case Op::kLock:
      return "fcntl";
    case Op::kRead:
      return "pread";
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
  if (int e = PastSizeLimit(offset + len, fd))
    return ErrnoStatus(e, "fallocate", path);
  int r;
  do {
    r = ::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(len));
  } while (r < 0 && errno == EINTR);
  if (r == 0) return absl::OkStatus();
  if (errno != EOPNOTSUPP) return ErrnoStatus(errno, "fallocate", path);
  // No fallocate here: zeros written past the end of the file take real
  // blocks (an ftruncate would leave a hole, and a store into a hole on a
  // full disk is a SIGBUS).
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus(errno, "fstat", path);
  uint64_t from = std::max<uint64_t>(offset, static_cast<uint64_t>(st.st_size));
  const uint64_t end = offset + len;
  static const char kZeros[1 << 16] = {};
  while (from < end) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(end - from, sizeof(kZeros)));
    if (int e = PwriteAll(fd, from, kZeros, n))
      return ErrnoStatus(e, "write(zeros)", path);
    from += n;
  }
  return absl::OkStatus();
}

absl::Status Truncate(int fd, uint64_t size, const std::string& path) {
  if (int e = Injected(Op::kFtruncate))
    return ErrnoStatus(e, "ftruncate", path);
  if (int e = PastSizeLimit(size, fd)) return ErrnoStatus(e, "ftruncate", path);
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
  // tmpfs and some others have no ZERO_RANGE. A punched hole would have
  // to be allocated again, and on a full disk that fails, leaving a hole
  // that a later store through the mapping turns into a SIGBUS; so the
  // blocks are kept and overwritten with zeros where they are not zero
  // already (most of a log past a tail is), then any hole already there
  // is allocated.
  if (errno != EOPNOTSUPP && errno != EINVAL)
    return ErrnoStatus(errno, "fallocate(zero range)", path);
  constexpr size_t kChunk = size_t{1} << 16;
  static const char kZeros[kChunk] = {};
  std::string buf(kChunk, '\0');
  for (uint64_t at = offset; at < offset + len;) {
    const size_t chunk =
        static_cast<size_t>(std::min<uint64_t>(offset + len - at, kChunk));
    ssize_t r;
    do {
      r = ::pread(fd, buf.data(), chunk, static_cast<off_t>(at));
    } while (r < 0 && errno == EINTR);
    if (r < 0) return ErrnoStatus(errno, "pread", path);
    if (r > 0 && std::memcmp(buf.data(), kZeros, static_cast<size_t>(r)) != 0) {
      if (int e = PwriteAll(fd, at, kZeros, static_cast<size_t>(r)))
        return ErrnoStatus(e, "write(zeros)", path);
    }
    at += chunk;
  }
  int r;
  do {
    r = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, off, n);
  } while (r < 0 && errno == EINTR);
  if (r != 0 && errno != EOPNOTSUPP)
    return ErrnoStatus(errno, "fallocate", path);
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
  if (int e = PastSizeLimit(offset + len))
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

absl::Status Write(int fd, uint64_t offset, const void* data, size_t len,
                   const std::string& path) {
  if (int e = Injected(Op::kWrite))
    return ErrnoStatus(e, OpName(Op::kWrite), path);
  if (int e = PastSizeLimit(offset + len))
    return ErrnoStatus(e, OpName(Op::kWrite), path);
  if (int e = PwriteAll(fd, offset, static_cast<const char*>(data), len))
    return ErrnoStatus(e, OpName(Op::kWrite), path);
  return absl::OkStatus();
}

absl::Status SyncParentDir(const std::string& path) {
  if (int e = Injected(Op::kFsyncDir))
    return ErrnoStatus(e, "fsync(dir)", path);
  std::string dir = ".";
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    dir = slash == 0 ? "/" : path.substr(0, slash);
  }
  int fd;
  do {
    fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open(dir)", dir);
  int r;
  do {
    r = ::fsync(fd);
  } while (r < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (r != 0) return ErrnoStatus(err, "fsync(dir)", dir);
  return absl::OkStatus();
}

absl::Status Read(int fd, uint64_t offset, void* buf, size_t len,
                  const std::string& path, size_t* got) {
  *got = 0;
  if (int e = Injected(Op::kRead)) return ErrnoStatus(e, "pread", path);
  char* p = static_cast<char*>(buf);
  while (*got < len) {
    const ssize_t r =
        ::pread(fd, p + *got, len - *got, static_cast<off_t>(offset + *got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "pread", path);
    }
    if (r == 0) break;  // the end of the file
    *got += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

absl::Status Stat(const std::string& path, struct stat* st) {
  if (int e = Injected(Op::kStat)) return ErrnoStatus(e, "stat", path);
  if (::stat(path.c_str(), st) != 0) return ErrnoStatus(errno, "stat", path);
  return absl::OkStatus();
}

absl::Status Fstat(int fd, const std::string& path, struct stat* st) {
  if (int e = Injected(Op::kStat)) return ErrnoStatus(e, "fstat", path);
  if (::fstat(fd, st) != 0) return ErrnoStatus(errno, "fstat", path);
  return absl::OkStatus();
}

absl::Status Rename(const std::string& from, const std::string& to) {
  const std::string what = absl::StrCat("rename ", from, " to");
  if (int e = Injected(Op::kRename)) return ErrnoStatus(e, what, to);
  if (::rename(from.c_str(), to.c_str()) != 0)
    return ErrnoStatus(errno, what, to);
  return absl::OkStatus();
}

absl::Status Unlink(const std::string& path) {
  if (int e = Injected(Op::kUnlink)) return ErrnoStatus(e, "unlink", path);
  if (::unlink(path.c_str()) != 0) return ErrnoStatus(errno, "unlink", path);
  return absl::OkStatus();
}

absl::Status UnlinkIfPresent(const std::string& path) {
  absl::Status s = Unlink(path);
  if (!s.ok() && errno == ENOENT) return absl::OkStatus();
  return s;
}

void Close(int fd) { (void)::close(fd); }

absl::Status Map(void* addr, size_t len, int prot, int flags, int fd,
                 uint64_t offset, const std::string& path, void** out) {
  if (int e = Injected(Op::kMmap)) return ErrnoStatus(e, "mmap", path);
  void* p = ::mmap(addr, len, prot, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return ErrnoStatus(errno, "mmap", path);
  *out = p;
  return absl::OkStatus();
}

void Unmap(void* addr, size_t len) { (void)::munmap(addr, len); }

absl::Status Advise(void* addr, size_t len, int advice,
                    const std::string& path) {
  if (int e = Injected(Op::kMadvise)) return ErrnoStatus(e, "madvise", path);
  while (::madvise(addr, len, advice) != 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "madvise", path);
  }
  return absl::OkStatus();
}

int FcntlLock(int fd, int cmd, struct flock* fl) {
  if (fl->l_type != F_UNLCK || cmd == F_OFD_GETLK) {
    if (int e = Injected(Op::kLock)) return e;
  }
  while (::fcntl(fd, cmd, fl) != 0) {
    if (errno != EINTR || cmd != F_OFD_SETLKW) return errno;
  }
  return 0;
}

}  // namespace recmap::io
