#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "workloads.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace recmap::bench {

Measure RawAppend(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  const uint64_t rec = 32 + ((len + 7) & ~size_t{7});
  const uint64_t size = n * rec;
  const std::string path = dir + "/raw.bin";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ::posix_fallocate(fd, 0, static_cast<off_t>(size)) != 0) {
    m.error = "raw: cannot create " + path;
    if (fd >= 0) ::close(fd);
    return m;
  }
  char* base = static_cast<char*>(
      ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (base == MAP_FAILED) {
    m.error = "raw: mmap failed";
    ::close(fd);
    return m;
  }
  if (::madvise(base, size, MADV_POPULATE_WRITE) != 0) {
    m.error = "raw: MADV_POPULATE_WRITE failed";
  }
  ValueMaker vm(len);
  const double t0 = Now();
  char* p = base;
  for (uint64_t i = 1; i <= n; ++i) {
    std::string_view v = vm.For(i);
    const uint64_t hdr[4] = {0, v.size(), i, i};
    std::memcpy(p, hdr, 32);
    std::memcpy(p + 32, v.data(), v.size());
    p += rec;
  }
  m.seconds = Now() - t0;
  m.ops = n;
  m.ok = m.error.empty();
  ::munmap(base, size);
  ::close(fd);
  ::unlink(path.c_str());
  return m;
}

}  // namespace recmap::bench
