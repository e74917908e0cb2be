// The disk's sequential write bandwidth, measured beside the sustained
// rows in the same directory (so on the same filesystem and device): what
// `dd oflag=direct` and `dd conv=fdatasync` measure, done here so that the
// figures come from the same run.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "workloads.h"

namespace recmap::bench {
namespace {

constexpr size_t kChunk = size_t{8} << 20;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// Writes `bytes` to a new file in `dir` in kChunk writes, with O_DIRECT if
// `direct`, then fdatasyncs it; times all of it. ops = bytes / `record`
// (the sustained rows compare records per second), bytes = bytes written.
Measure SequentialWrite(const std::string& dir, uint64_t bytes, bool direct,
                        uint64_t record) {
  Measure m;
  const std::string path = dir + (direct ? "/direct.bin" : "/buffered.bin");
  void* raw = nullptr;
  if (::posix_memalign(&raw, 4096, kChunk) != 0) {
    m.error = "disk: posix_memalign failed";
    return m;
  }
  std::unique_ptr<void, FreeDeleter> buf(raw);
  // Not zeros: a device or layer that elides zero blocks would flatter it.
  auto* words = static_cast<uint64_t*>(raw);
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < kChunk / 8; ++i)
    words[i] = x = x * 6364136223846793005ULL + 1;
  const int fd =
      ::open(path.c_str(),
             O_WRONLY | O_CREAT | O_TRUNC | (direct ? O_DIRECT : 0), 0644);
  if (fd < 0) {
    m.error =
        std::string("disk: cannot open ") + path + ": " + std::strerror(errno);
    return m;
  }
  const double t0 = Now(), c0 = CpuNow();
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t r = ::pwrite(fd, raw, kChunk, static_cast<off_t>(done));
    if (r <= 0) {
      m.error = std::string("disk: write failed: ") + std::strerror(errno);
      break;
    }
    done += static_cast<uint64_t>(r);
  }
  if (m.error.empty() && ::fdatasync(fd) != 0)
    m.error = std::string("disk: fdatasync failed: ") + std::strerror(errno);
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  ::close(fd);
  ::unlink(path.c_str());
  m.bytes = static_cast<double>(done);
  m.ops = done / record;
  m.steady_ops_per_sec = m.OpsPerSec();
  m.worst_ops_per_sec = m.OpsPerSec();
  m.ok = m.error.empty();
  return m;
}

}  // namespace

Measure DiskDirectWrite(const std::string& dir, uint64_t bytes,
                        uint64_t record) {
  return SequentialWrite(dir, bytes, /*direct=*/true, record);
}

Measure DiskBufferedWrite(const std::string& dir, uint64_t bytes,
                          uint64_t record) {
  return SequentialWrite(dir, bytes, /*direct=*/false, record);
}

}  // namespace recmap::bench
