// Shared pieces of recmap_bench: timing, deterministic data, scratch files,
// and running each measurement in a child process of its own (so that peak
// RSS is per workload and one side's page cache state or heap does not
// leak into the other's figure).
#ifndef RECMAP_BENCH_BENCH_UTIL_H_
#define RECMAP_BENCH_BENCH_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace recmap::bench {

// Monotonic clock in seconds.
double Now();
// CPU seconds (user + system) used so far by this process's threads and by
// the children it has waited for.
double CpuNow();

// What one measured run produced.
struct Measure {
  bool ok = false;
  std::string error;       // when !ok
  uint64_t ops = 0;        // records written / read / opened
  double seconds = 0;      // time of the measured section only
  double extra = 0;        // workload-specific (e.g. index bytes per record)
  uint64_t peak_rss = 0;   // child's peak resident set, bytes (ru_maxrss)
  double cpu_seconds = 0;  // CPU of the measured section, every thread
  // The sustained rows only (0 elsewhere): the rate over the last two
  // thirds of the run (ops/s), the lowest rate over any one second, the
  // bytes the run wrote to its file, and the seconds of the flush after
  // the run that made them durable (not in `seconds`).
  double steady_ops_per_sec = 0;
  double worst_ops_per_sec = 0;
  double bytes = 0;
  double flush_seconds = 0;
  double OpsPerSec() const { return seconds > 0 ? ops / seconds : 0; }
  // CPU nanoseconds per operation (0 when not measured).
  double CpuNsPerOp() const { return ops > 0 ? cpu_seconds * 1e9 / ops : 0; }
};

// Runs `fn` in a forked child and returns what it measured, with the
// child's peak RSS. A crashing child gives !ok.
Measure RunInChild(const std::function<Measure()>& fn);

// The values every workload writes: `len` bytes of a fixed pattern with the
// record's id stamped over the first 8 (or fewer) bytes, so a wrong record
// is noticed when read back, at the cost of one 8-byte store per record.
class ValueMaker {
 public:
  explicit ValueMaker(size_t len);
  std::string_view For(uint64_t id);
  size_t size() const { return buf_.size(); }

 private:
  std::string buf_;
};
// True if `v` is the value ValueMaker(v.size()).For(id) made.
bool CheckValue(uint64_t id, std::string_view v);

// A random permutation of 1..n, seeded.
std::vector<uint64_t> Shuffled(uint64_t n, uint64_t seed);

// Scratch directory for the run: created under `base`, removed (with
// everything in it) by RemoveScratch.
std::string MakeScratch(const std::string& base);
void RemoveScratch(const std::string& dir);
// Removes a file or directory tree; ignores errors.
void RemovePath(const std::string& path);
// Total size of the files under `path` (a file or a directory).
uint64_t DiskUsage(const std::string& path);

// Runs `procs` child processes at once. Each calls setup(p), untimed (it
// opens what it needs and returns the measured work, or null on failure),
// waits at a common start gate, then runs the work, which returns true on
// success. Returns the wall time from the first start to the last end, the
// CPU of the measured sections summed, ops = `ops`, and ok when every child
// succeeded. On failure, error is `what` + " process failed".
Measure RunProcessesAtOnce(
    int procs, uint64_t ops, const std::string& what,
    const std::function<std::function<bool()>(int)>& setup);

// Parent/child start barrier for the multi-process workloads.
class StartGate {
 public:
  StartGate();
  ~StartGate();
  void Wait();              // child: block until Open()
  void Open(int children);  // parent
 private:
  int fds_[2];
};

}  // namespace recmap::bench

#endif  // RECMAP_BENCH_BENCH_UTIL_H_
