// recmap_latency_bench: publish-to-delivery latency between two processes,
// per tailer wait strategy (docs/BENCHMARKS.md, "Tail latency").
//
// For each store configuration ("default": Options{}; "latency":
// Options::prefault_mode = PrefaultMode::kInline, no prefault helper
// thread), each strategy (park, spin, backoff) and each pace (a fixed rate
// paced by spinning on CLOCK_MONOTONIC, and full speed), a producer process
// appends N records of 100 bytes, each carrying its CLOCK_MONOTONIC publish
// time, and a tailer process (a read-only handle) follows them; latency is
// the tailer's clock at delivery minus the time in the record. With 2 or
// more CPUs the producer is pinned to CPU 0 and the tailer to CPU 1. A
// producer-only run at full speed gives the throughput without a tailer.
// The producer appends one warm-up record (skipped by the tailer) before
// its clock starts, so that claiming its region is not measured.
//
//   recmap_latency_bench [--dir D] [--records N] [--rate R] [--hist FILE]
//                        [--json] [--config default|latency|both]
// Prints a table and JSON lines (--json); --hist writes the latency
// histograms at the fixed rate of the last configuration run (bucket upper
// bound in us, count per strategy) for bench/plot_latency.sh.
// For experiments: --only S (strategy 0 park, 1 spin, 2 backoff),
// --fixed-only, --full-only, --prefault-bytes N, --prefault-inline,
// --region-size N, --no-persist-index, and --outliers FILE [--outlier-us U]
// (appends "index publish_ns latency_ns append_ns" for every record slower
// than U us, after a "# strategy pace mode producer PID tailer PID" line:
// publish_ns is CLOCK_MONOTONIC, as in `perf sched record -k
// CLOCK_MONOTONIC`, to find what ran instead).
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "recmap/store.h"
#include "recmap/tailer.h"
#include "store_peer.h"

namespace {

uint64_t NowNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

void Pin(int cpu) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof(set), &set);
}

// Shared between the parent and its two children (MAP_SHARED anonymous).
struct Shared {
  volatile int tailer_ready;
  volatile int tailer_failed;
  uint64_t producer_ns;  // producer's elapsed time for all appends
  uint64_t tailer_minflt, tailer_majflt, producer_minflt;
  uint64_t futex_waits, short_waits;
  uint64_t received;
  // [3 * records]: latency (ns) at [i], publish time at [n + i], time the
  // producer spent in Append at [2n + i].
  uint64_t lat[1];
};

struct Run {
  std::string config, strategy, pace;
  uint64_t records = 0;
  double producer_mps = 0;
  double p50 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;  // us
  uint64_t tailer_minflt = 0, producer_minflt = 0, futex_waits = 0;
  std::vector<uint64_t> lat;
};

const char* kNames[] = {"park", "spin", "backoff"};

// Knobs for experiments (flags); the defaults are what users get.
struct Config {
  recmap::Options store;         // the producer's store options
  int only = -2;                 // a strategy index to run alone; -2: all
  std::string configs = "both";  // default, latency or both
  bool fixed_only = false;       // skip the full-speed pass
  bool full_only = false;        // skip the fixed-rate pass
  std::string outliers;          // file for records above outlier_us
  double outlier_us = 50;
};
Config g_cfg;

// A child's page tables start empty for the shared result arrays (fork
// copies none for a shared mapping): populate its part before the clock
// starts, or its first write to each page faults inside the measurement.
void Populate(void* from, size_t bytes) {
  char* p = static_cast<char*>(from);
  char* b = reinterpret_cast<char*>(uintptr_t(p) & ~uintptr_t(4095));
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
  if (madvise(b, bytes + (p - b), MADV_POPULATE_WRITE) != 0) {
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 0;
  }
}

int Producer(const std::string& path, uint64_t n, double rate, Shared* sh) {
  Pin(0);
  Populate(&sh->lat[2 * n], n * sizeof(uint64_t));
  auto store = recmap::Store::Open(path, g_cfg.store);
  if (!store.ok()) return 1;
  auto w = (*store)->NewWriter();
  if (!w.ok()) return 1;
  char buf[100];
  std::memset(buf, 'x', sizeof(buf));
  // One record before the clock starts (sequence 1, which the tailer
  // skips): the writer claims its region (grows the file, formats the
  // region, populates its first pages) at its first append.
  if (!(*w)->Append(std::string_view(buf, sizeof(buf))).ok()) return 2;
  const uint64_t interval = rate > 0 ? uint64_t(1e9 / rate) : 0;
  struct rusage r0, r1;
  // This thread only: the background prefaulter's populating is not a
  // fault of the append path (inline prefaulting, kInline, counts).
  getrusage(RUSAGE_THREAD, &r0);
  const uint64_t start = NowNanos();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t now = NowNanos();
    if (interval != 0) {
      const uint64_t due = start + i * interval;
      while (now < due) now = NowNanos();
    }
    std::memcpy(buf, &i, 8);
    std::memcpy(buf + 8, &now, 8);
    if (!(*w)->Append(std::string_view(buf, sizeof(buf))).ok()) return 2;
    sh->lat[2 * n + i] = NowNanos() - now;
  }
  sh->producer_ns = NowNanos() - start;
  getrusage(RUSAGE_THREAD, &r1);
  sh->producer_minflt = uint64_t(r1.ru_minflt - r0.ru_minflt);
  return 0;
}

int TailerProc(const std::string& path, uint64_t n, recmap::WaitStrategy ws,
               Shared* sh) {
  Pin(1);
  Populate(&sh->lat[0], 2 * n * sizeof(uint64_t));
  recmap::Options o;
  o.read_only = true;
  auto store = recmap::Store::Open(path, o);
  if (!store.ok()) return 1;
  recmap::TailerOptions to;
  to.from_sequence = 2;  // past the producer's warm-up record
  to.wait = ws;
  auto t = recmap::Tailer::Create(**store, to);
  if (!t.ok()) return 1;
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  sh->tailer_ready = 1;
  uint64_t got_n = 0;
  while (got_n < n) {
    absl::StatusOr<std::optional<recmap::RecordView>> got =
        (*t)->Next(std::chrono::seconds(30));
    if (!got.ok() || !got->has_value()) return 3;
    const uint64_t now = NowNanos();
    const recmap::RecordView& v = **got;
    uint64_t i, ts;
    std::memcpy(&i, v.value.data(), 8);
    std::memcpy(&ts, v.value.data() + 8, 8);
    if (i != got_n) return 4;
    sh->lat[n + got_n] = ts;
    sh->lat[got_n++] = now - ts;
  }
  getrusage(RUSAGE_SELF, &r1);
  sh->tailer_minflt = uint64_t(r1.ru_minflt - r0.ru_minflt);
  sh->tailer_majflt = uint64_t(r1.ru_majflt - r0.ru_majflt);
  sh->futex_waits = recmap::StorePeer::Counters(**t).futex_waits;
  sh->short_waits = recmap::StorePeer::Counters(**t).short_waits;
  sh->received = got_n;
  return 0;
}

// strategy -1: no tailer.
bool RunOne(const std::string& dir, uint64_t n, double rate, int strategy,
            Run* out) {
  const std::string path = dir + "/latency.rmap";
  std::filesystem::remove(path);
  {
    recmap::Options o = g_cfg.store;
    o.create_if_missing = true;
    if (!recmap::Store::Open(path, o).ok()) return false;
  }
  const size_t bytes = sizeof(Shared) + 3 * n * sizeof(uint64_t);
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (m == MAP_FAILED) return false;
  auto* sh = static_cast<Shared*>(m);
  std::fflush(stdout);
  pid_t tailer = -1;
  if (strategy >= 0) {
    tailer = fork();
    if (tailer == 0)
      _exit(TailerProc(path, n, recmap::WaitStrategy(strategy), sh));
    while (!sh->tailer_ready) {
      int st;
      if (waitpid(tailer, &st, WNOHANG) == tailer) return false;
      usleep(1000);
    }
    usleep(20000);  // let it settle into its wait
  }
  pid_t producer = fork();
  if (producer == 0) _exit(Producer(path, n, rate, sh));
  int ps = 0, ts = 0;
  waitpid(producer, &ps, 0);
  if (tailer > 0) waitpid(tailer, &ts, 0);
  const bool ok = WIFEXITED(ps) && WEXITSTATUS(ps) == 0 &&
                  (tailer < 0 || (WIFEXITED(ts) && WEXITSTATUS(ts) == 0));
  if (!ok) {
    std::fprintf(stderr, "run failed: producer %d tailer %d\n", ps, ts);
    munmap(m, bytes);
    return false;
  }
  out->strategy = strategy < 0 ? "none" : kNames[strategy];
  out->pace = rate > 0 ? std::to_string(uint64_t(rate)) + "/s" : "full";
  out->records = n;
  out->producer_mps = n / (sh->producer_ns / 1e9) / 1e6;
  out->producer_minflt = sh->producer_minflt;
  if (strategy >= 0 && !g_cfg.outliers.empty()) {
    // index publish_ns latency_ns append_ns, for records above outlier_us.
    FILE* f = std::fopen(g_cfg.outliers.c_str(), "a");
    if (f != nullptr) {
      std::fprintf(f, "# %s %s %s producer %d tailer %d\n", kNames[strategy],
                   rate > 0 ? "fixed" : "full",
                   g_cfg.store.prefault_mode == recmap::PrefaultMode::kInline
                       ? "inline"
                       : "background",
                   int(producer), int(tailer));
      for (uint64_t i = 0; i < n; ++i) {
        if (sh->lat[i] > g_cfg.outlier_us * 1000)
          std::fprintf(f, "%llu %llu %llu %llu\n", (unsigned long long)i,
                       (unsigned long long)sh->lat[n + i],
                       (unsigned long long)sh->lat[i],
                       (unsigned long long)sh->lat[2 * n + i]);
      }
      std::fclose(f);
    }
  }
  if (strategy >= 0) {
    out->lat.assign(sh->lat, sh->lat + n);
    std::sort(out->lat.begin(), out->lat.end());
    auto pct = [&](double p) {
      return out->lat[std::min<size_t>(n - 1, size_t(p * n))] / 1000.0;
    };
    out->p50 = pct(0.5);
    out->p99 = pct(0.99);
    out->p999 = pct(0.999);
    out->p9999 = pct(0.9999);
    out->max = out->lat.back() / 1000.0;
    out->tailer_minflt = sh->tailer_minflt;
    out->futex_waits = sh->futex_waits;
  }
  munmap(m, bytes);
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".idx");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp", hist;
  uint64_t n = 1000000;
  double rate = 100000;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--dir")
      dir = val();
    else if (a == "--records")
      n = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--rate")
      rate = std::strtod(val().c_str(), nullptr);
    else if (a == "--hist")
      hist = val();
    else if (a == "--json")
      json = true;
    else if (a == "--config")
      g_cfg.configs = val();
    else if (a == "--only")
      g_cfg.only = std::atoi(val().c_str());
    else if (a == "--fixed-only")
      g_cfg.fixed_only = true;
    else if (a == "--full-only")
      g_cfg.full_only = true;
    else if (a == "--prefault-bytes")
      g_cfg.store.prefault_bytes = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--prefault-inline")
      g_cfg.store.prefault_mode = recmap::PrefaultMode::kInline;
    else if (a == "--region-size")
      g_cfg.store.region_size = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--no-persist-index")
      g_cfg.store.persist_index = false;
    else if (a == "--outliers")
      g_cfg.outliers = val();
    else if (a == "--outlier-us")
      g_cfg.outlier_us = std::strtod(val().c_str(), nullptr);
    else {
      std::fprintf(stderr,
                   "usage: recmap_latency_bench [--dir D] [--records N] "
                   "[--rate R] [--hist FILE] [--json]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (n == 0) return 2;
  std::vector<Run> runs;
  // The store configurations: "default" (Options{}) and "latency"
  // (Options::prefault_mode = kInline: no helper thread taking time slices
  // from the producer or the tailer).
  std::vector<std::string> configs;
  if (g_cfg.configs != "latency") configs.push_back("default");
  if (g_cfg.configs != "default") configs.push_back("latency");
  const recmap::Options base = g_cfg.store;
  // Interleaved: each strategy at the fixed rate, then at full speed next
  // to a producer alone; per configuration.
  for (const std::string& config : configs) {
    g_cfg.store = base;
    if (config == "latency")
      g_cfg.store.prefault_mode = recmap::PrefaultMode::kInline;
    for (int pass = g_cfg.full_only ? 1 : 0; pass < (g_cfg.fixed_only ? 1 : 2);
         ++pass) {
      const double r = pass == 0 ? rate : 0;
      for (int s = pass == 0 ? 0 : -1; s < 3; ++s) {
        if (g_cfg.only != -2 && s != g_cfg.only) continue;
        Run run;
        if (!RunOne(dir, n, r, s, &run)) return 1;
        run.config = config;
        runs.push_back(std::move(run));
      }
    }
  }
  std::printf("%-8s %-8s %-9s %9s %8s %8s %8s %9s %9s %10s %9s %9s %8s\n",
              "config", "strategy", "pace", "records", "p50_us", "p99_us",
              "p99.9_us", "p99.99_us", "max_us", "prod_M/s", "tail_flt",
              "prod_flt", "futex_w");
  for (const Run& r : runs) {
    std::printf(
        "%-8s %-8s %-9s %9llu %8.2f %8.2f %8.2f %9.2f %9.1f %10.2f %9llu "
        "%9llu %8llu\n",
        r.config.c_str(), r.strategy.c_str(), r.pace.c_str(),
        (unsigned long long)r.records, r.p50, r.p99, r.p999, r.p9999, r.max,
        r.producer_mps, (unsigned long long)r.tailer_minflt,
        (unsigned long long)r.producer_minflt,
        (unsigned long long)r.futex_waits);
  }
  if (json) {
    for (const Run& r : runs) {
      std::printf(
          "{\"workload\":\"tail_latency\",\"config\":\"%s\","
          "\"strategy\":\"%s\",\"pace\":\"%s\","
          "\"records\":%llu,\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,"
          "\"p9999_us\":%.3f,\"max_us\":%.1f,\"producer_mps\":%.3f,"
          "\"tailer_minflt\":%llu,\"producer_minflt\":%llu,"
          "\"futex_waits\":%llu}\n",
          r.config.c_str(), r.strategy.c_str(), r.pace.c_str(),
          (unsigned long long)r.records, r.p50, r.p99, r.p999, r.p9999, r.max,
          r.producer_mps, (unsigned long long)r.tailer_minflt,
          (unsigned long long)r.producer_minflt,
          (unsigned long long)r.futex_waits);
    }
  }
  if (!hist.empty() && g_cfg.only == -2 && !g_cfg.full_only) {
    // Log buckets, 10 per decade from 0.1 us to 100 ms.
    FILE* f = std::fopen(hist.c_str(), "w");
    if (f == nullptr) return 1;
    // The last configuration run ("latency" unless --config default).
    std::vector<const Run*> fixed;
    for (const Run& r : runs)
      if (r.config == configs.back() && r.pace != "full") fixed.push_back(&r);
    if (fixed.size() != 3) return 1;
    std::fprintf(f,
                 "# upper_us park spin backoff (records at the fixed rate, "
                 "config %s)\n",
                 configs.back().c_str());
    std::vector<double> edges;
    for (int k = -10; k <= 50; ++k) edges.push_back(std::pow(10.0, k / 10.0));
    std::vector<size_t> idx(3, 0);
    for (double e : edges) {
      std::fprintf(f, "%.4g", e);
      for (int s = 0; s < 3; ++s) {
        const std::vector<uint64_t>& l = fixed[s]->lat;
        size_t c = 0;
        while (idx[s] < l.size() && l[idx[s]] / 1000.0 <= e) ++idx[s], ++c;
        std::fprintf(f, " %zu", c);
      }
      std::fprintf(f, "\n");
    }
    std::fclose(f);
  }
  return 0;
}
