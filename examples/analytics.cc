// The seed's real-time analytics dashboard, without a ring buffer to
// overrun and without a lock: collector processes append sensor readings
// to one store (each in a region of its own), and an analyzer process tails
// them live, printing rolling statistics per metric. Readings persist: run
// the analyzer again later with --from 1 and it replays them.
//
//   analytics [--collectors N] [--readings R] [--window W]
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "recmap/store.h"
#include "recmap/tailer.h"

namespace {

struct Reading {
  uint32_t metric;
  uint32_t index;
  double value;
};

// A deterministic "sensor": around 50 + 5 * metric, +-10.
double Sensor(uint32_t metric, uint32_t i) {
  uint64_t x = (uint64_t(metric) + 1) * 0x9E3779B97F4A7C15ULL + i * 7919;
  x ^= x >> 29;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 32;
  return 50.0 + 5.0 * metric + (double(x % 2001) / 100.0 - 10.0);
}

int Collector(const std::string& path, uint32_t metric, uint32_t readings) {
  auto store = recmap::Store::Open(path, {});
  if (!store.ok()) return 1;
  auto writer = (*store)->NewWriter();  // this collector's own region
  if (!writer.ok()) return 1;
  for (uint32_t i = 0; i < readings; ++i) {
    Reading r{metric, i, Sensor(metric, i)};
    if (!(*writer)
             ->Append(std::string_view(reinterpret_cast<char*>(&r), sizeof r))
             .ok())
      return 2;
    usleep(1000);  // a 1 kHz sensor
  }
  return 0;
}

struct Rolling {
  std::deque<double> window;
  double sum = 0, sum_sq = 0;
  uint64_t count = 0;
  uint32_t next_index = 0;
  bool in_order = true;
  void Add(double v, size_t w) {
    window.push_back(v);
    sum += v;
    sum_sq += v * v;
    if (window.size() > w) {
      sum -= window.front();
      sum_sq -= window.front() * window.front();
      window.pop_front();
    }
    ++count;
  }
  double Mean() const { return window.empty() ? 0 : sum / window.size(); }
  double Std() const {
    if (window.size() < 2) return 0;
    double m = Mean();
    return std::sqrt(std::max(0.0, sum_sq / window.size() - m * m));
  }
};

int Analyzer(const std::string& path, uint32_t collectors, uint32_t readings,
             size_t window) {
  recmap::Options o;
  o.read_only = true;
  auto store = recmap::Store::Open(path, o);
  if (!store.ok()) return 1;
  auto tailer = recmap::Tailer::Create(**store, {.from_sequence = 1});
  if (!tailer.ok()) return 1;
  std::vector<Rolling> metrics(collectors);
  const uint64_t total = uint64_t(collectors) * readings;
  uint64_t seen = 0;
  while (seen < total) {
    absl::StatusOr<std::optional<recmap::RecordView>> got =
        (*tailer)->Next(std::chrono::seconds(30));
    if (!got.ok() || !got->has_value()) return 3;
    const recmap::RecordView& rec = **got;
    Reading r;
    if (rec.value.size() != sizeof r) return 4;
    std::memcpy(&r, rec.value.data(), sizeof r);
    if (r.metric >= collectors) return 4;
    Rolling& m = metrics[r.metric];
    m.in_order = m.in_order && r.index == m.next_index;
    m.next_index = r.index + 1;
    m.Add(r.value, window);
    if (++seen % (total / 4) == 0) {
      std::printf("analyzer: %llu readings so far (last sequence %llu)\n",
                  static_cast<unsigned long long>(seen),
                  static_cast<unsigned long long>(rec.sequence));
      for (uint32_t k = 0; k < collectors; ++k) {
        std::printf("  metric %u: mean %.2f  stddev %.2f  (last %zu)\n", k,
                    metrics[k].Mean(), metrics[k].Std(),
                    metrics[k].window.size());
      }
    }
  }
  bool ok = true;
  for (uint32_t k = 0; k < collectors; ++k) {
    std::printf("analyzer: metric %u: %llu readings, %s\n", k,
                static_cast<unsigned long long>(metrics[k].count),
                metrics[k].in_order ? "in order" : "OUT OF ORDER");
    ok = ok && metrics[k].count == readings && metrics[k].in_order;
  }
  return ok ? 0 : 5;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t collectors = 4, readings = 500;
  size_t window = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--collectors")
      collectors = std::atoi(argv[i + 1]);
    else if (a == "--readings")
      readings = std::atoi(argv[i + 1]);
    else if (a == "--window")
      window = std::atoi(argv[i + 1]);
  }
  if (collectors == 0 || readings < 4) return 2;
  const char* t = std::getenv("TMPDIR");
  std::string dir = std::string(t && *t ? t : "/tmp") + "/recmap-an-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  const std::string path = dir + "/metrics.rmap";
  {
    recmap::Options o;
    o.create_if_missing = true;
    o.region_size = 1 << 20;
    if (!recmap::Store::Open(path, o).ok()) return 1;
  }
  std::printf("analytics: %u collectors x %u readings, rolling window %zu\n",
              collectors, readings, window);
  std::fflush(stdout);
  pid_t analyzer = fork();
  if (analyzer == 0) {
    int rc = Analyzer(path, collectors, readings, window);
    std::fflush(stdout);
    _exit(rc);
  }
  std::vector<pid_t> pids;
  for (uint32_t m = 0; m < collectors; ++m) {
    pid_t p = fork();
    if (p == 0) _exit(Collector(path, m, readings));
    pids.push_back(p);
  }
  bool ok = true;
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  int st = 0;
  waitpid(analyzer, &st, 0);
  ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  std::filesystem::remove_all(dir);
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
