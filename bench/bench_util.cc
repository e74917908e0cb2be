#include "bench_util.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

namespace recmap::bench {

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double CpuNow() {
  auto secs = [](const struct rusage& r) {
    return r.ru_utime.tv_sec + r.ru_utime.tv_usec * 1e-6 + r.ru_stime.tv_sec +
           r.ru_stime.tv_usec * 1e-6;
  };
  struct rusage self {
  }, kids{};
  ::getrusage(RUSAGE_SELF, &self);
  ::getrusage(RUSAGE_CHILDREN, &kids);
  return secs(self) + secs(kids);
}

namespace {
// The child's result travels through a pipe as fixed fields then the
// error text.
struct Wire {
  uint8_t ok;
  uint64_t ops;
  double seconds;
  double extra;
  double cpu_seconds;
  double steady, worst, bytes, flush;
  uint32_t error_len;
};

bool ReadAll(int fd, void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void WriteAll(int fd, const void* p, size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t r = ::write(fd, c, n);
    if (r <= 0) return;
    c += r;
    n -= static_cast<size_t>(r);
  }
}
}  // namespace

Measure RunInChild(const std::function<Measure()>& fn) {
  int p[2];
  Measure m;
  if (::pipe(p) != 0) {
    m.error = "pipe failed";
    return m;
  }
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    m.error = "fork failed";
    return m;
  }
  if (pid == 0) {
    ::close(p[0]);
    Measure r = fn();
    Wire w{r.ok,
           r.ops,
           r.seconds,
           r.extra,
           r.cpu_seconds,
           r.steady_ops_per_sec,
           r.worst_ops_per_sec,
           r.bytes,
           r.flush_seconds,
           static_cast<uint32_t>(r.error.size())};
    WriteAll(p[1], &w, sizeof(w));
    WriteAll(p[1], r.error.data(), r.error.size());
    ::close(p[1]);
    std::fflush(nullptr);
    ::_exit(0);
  }
  ::close(p[1]);
  Wire w{};
  bool got = ReadAll(p[0], &w, sizeof(w));
  std::string err(got ? w.error_len : 0, '\0');
  if (got && w.error_len > 0) got = ReadAll(p[0], err.data(), err.size());
  ::close(p[0]);
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  if (!got) {
    m.error = "child died (status " + std::to_string(status) + ")";
    return m;
  }
  m.ok = w.ok;
  m.ops = w.ops;
  m.seconds = w.seconds;
  m.extra = w.extra;
  m.cpu_seconds = w.cpu_seconds;
  m.steady_ops_per_sec = w.steady;
  m.worst_ops_per_sec = w.worst;
  m.bytes = w.bytes;
  m.flush_seconds = w.flush;
  m.error = err;
  m.peak_rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  return m;
}

namespace {
void Pattern(size_t len, char* out) {
  uint64_t x = 0x0123456789ABCDEFULL;
  for (size_t i = 0; i < len; ++i) {
    out[i] = static_cast<char>(x >> (8 * (i % 8)));
    if (i % 8 == 7) x = x * 0x9E3779B97F4A7C15ULL + 1;
  }
}
}  // namespace

ValueMaker::ValueMaker(size_t len) : buf_(len, '\0') {
  Pattern(len, buf_.data());
}

std::string_view ValueMaker::For(uint64_t id) {
  std::memcpy(buf_.data(), &id, std::min<size_t>(8, buf_.size()));
  return buf_;
}

bool CheckValue(uint64_t id, std::string_view v) {
  std::string want(v.size(), '\0');
  Pattern(v.size(), want.data());
  std::memcpy(want.data(), &id, std::min<size_t>(8, want.size()));
  return want == v;
}

std::vector<uint64_t> Shuffled(uint64_t n, uint64_t seed) {
  std::vector<uint64_t> v(n);
  std::iota(v.begin(), v.end(), 1);
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

std::string MakeScratch(const std::string& base) {
  std::string tmpl = base + "/recmap-bench-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  return p ? std::string(p) : std::string();
}

void RemovePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

void RemoveScratch(const std::string& dir) { RemovePath(dir); }

uint64_t DiskUsage(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec))
    return std::filesystem::file_size(path, ec);
  uint64_t total = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(path, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

StartGate::StartGate() {
  if (::pipe(fds_) != 0) fds_[0] = fds_[1] = -1;
}
StartGate::~StartGate() {
  if (fds_[0] >= 0) ::close(fds_[0]);
  if (fds_[1] >= 0) ::close(fds_[1]);
}
void StartGate::Wait() {
  char c;
  (void)!::read(fds_[0], &c, 1);
}
void StartGate::Open(int children) {
  std::string s(static_cast<size_t>(children), 'g');
  WriteAll(fds_[1], s.data(), s.size());
}

Measure RunProcessesAtOnce(
    int procs, uint64_t ops, const std::string& what,
    const std::function<std::function<bool()>(int)>& setup) {
  Measure m;
  // Per child: start and end time, CPU of the measured section, and ok.
  struct Slot {
    double start, end, cpu;
    int ok;
  };
  auto* slots = static_cast<Slot*>(::mmap(nullptr, sizeof(Slot) * procs,
                                          PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (slots == MAP_FAILED) {
    m.error = "mmap failed";
    return m;
  }
  StartGate gate;
  std::vector<pid_t> pids;
  for (int p = 0; p < procs; ++p) {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      std::function<bool()> work = setup(p);
      gate.Wait();
      slots[p].start = Now();
      const double c0 = CpuNow();
      const bool ok = work && work();
      slots[p].end = Now();
      slots[p].cpu = CpuNow() - c0;
      slots[p].ok = ok;
      work = nullptr;  // closes what setup opened
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  ::usleep(200000);  // let every child set up and reach the gate
  gate.Open(procs);
  bool ok = true;
  for (pid_t pid : pids) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  double start = 1e300, end = 0;
  for (int p = 0; p < procs; ++p) {
    ok = ok && slots[p].ok;
    start = std::min(start, slots[p].start);
    end = std::max(end, slots[p].end);
    m.cpu_seconds += slots[p].cpu;
  }
  ::munmap(slots, sizeof(Slot) * procs);
  if (!ok) {
    m.error = what + " process failed";
    return m;
  }
  m.seconds = end - start;
  m.ops = ops;
  m.ok = true;
  return m;
}

}  // namespace recmap::bench
