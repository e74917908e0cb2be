#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "workloads.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace recmap::bench {
namespace {

// A shared writable mapping of a new file of `size` bytes, its blocks
// allocated (fallocate) and its pages not yet touched. Null on failure,
// with m->error set; UnmapFresh undoes it.
char* MapFresh(const std::string& path, uint64_t size, int* fd, Measure* m) {
  *fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (*fd < 0 || ::posix_fallocate(*fd, 0, static_cast<off_t>(size)) != 0) {
    m->error = "raw: cannot create " + path;
    if (*fd >= 0) ::close(*fd);
    return nullptr;
  }
  void* base =
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  if (base == MAP_FAILED) {
    m->error = "raw: mmap failed";
    ::close(*fd);
    return nullptr;
  }
  return static_cast<char*>(base);
}

void UnmapFresh(const std::string& path, char* base, uint64_t size, int fd) {
  ::munmap(base, size);
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace

Measure RawAppend(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  const uint64_t rec = 32 + ((len + 7) & ~size_t{7});
  const uint64_t size = n * rec;
  const std::string path = dir + "/raw.bin";
  int fd = -1;
  char* base = MapFresh(path, size, &fd, &m);
  if (base == nullptr) return m;
  if (::madvise(base, size, MADV_POPULATE_WRITE) != 0) {
    m.error = "raw: MADV_POPULATE_WRITE failed";
  }
  ValueMaker vm(len);
  const double t0 = Now(), c0 = CpuNow();
  char* p = base;
  for (uint64_t i = 1; i <= n; ++i) {
    std::string_view v = vm.For(i);
    const uint64_t hdr[4] = {0, v.size(), i, i};
    std::memcpy(p, hdr, 32);
    std::memcpy(p + 32, v.data(), v.size());
    p += rec;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = m.error.empty();
  UnmapFresh(path, base, size, fd);
  return m;
}

Measure RawFreshAppend(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  const uint64_t padded = (len + 7) & ~size_t{7};
  const uint64_t rec = 32 + padded;
  constexpr uint64_t kChunk = uint64_t{2} << 20;   // populated per madvise
  constexpr uint64_t kAhead = uint64_t{16} << 20;  // kept populated ahead
  const uint64_t size = (n * rec + kChunk - 1) / kChunk * kChunk;
  const std::string path = dir + "/raw_fresh.bin";
  int fd = -1;
  char* base = MapFresh(path, size, &fd, &m);
  if (base == nullptr) return m;
  // The writer publishes how far it got; the helper keeps kAhead bytes past
  // it populated, as recmap's prefault thread does. Pages the helper has
  // not reached yet fault in the writer.
  std::atomic<uint64_t> written{0};
  std::atomic<bool> done{false};
  std::thread helper([&] {
    uint64_t populated = 0;
    while (!done.load(std::memory_order_relaxed) && populated < size) {
      const uint64_t want =
          std::min(size, written.load(std::memory_order_relaxed) + kAhead);
      if (populated >= want) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      populated = std::max(
          populated, written.load(std::memory_order_relaxed) / kChunk * kChunk);
      ::madvise(base + populated, kChunk, MADV_POPULATE_WRITE);
      populated += kChunk;
    }
  });
  ValueMaker vm(len);
  const double t0 = Now(), c0 = CpuNow();
  char* p = base;
  for (uint64_t i = 1; i <= n; ++i) {
    std::string_view v = vm.For(i);
    const uint64_t hdr[4] = {0, v.size(), i, i};
    std::memcpy(p, hdr, 32);
    std::memcpy(p + 32, v.data(), v.size());
    const uint64_t sum = XXH3_64bits_withSeed(p + 8, 24 + v.size(), 0x5EED);
    std::memcpy(p, &sum, 8);
    p += rec;
    if ((i & 1023) == 0)
      written.store(static_cast<uint64_t>(p - base), std::memory_order_relaxed);
  }
  m.seconds = Now() - t0;
  done.store(true);
  helper.join();
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = true;
  UnmapFresh(path, base, size, fd);
  return m;
}

}  // namespace recmap::bench
