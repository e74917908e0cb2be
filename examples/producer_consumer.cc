// The seed's producer/consumer, across processes and persistent: one
// process appends records, another follows them live through the tailing
// reader (no polling: it sleeps until the producer publishes), in order.
// Each record carries the producer's clock, so the consumer also reports
// the wake-up latency from publication to delivery. --wait picks how the
// tailer waits: park (default: sleeps until the producer wakes it, no CPU
// while idle), spin (polls: about a microsecond, one core busy) or backoff
// (spins, yields, then parks).
//
//   producer_consumer [--records N] [--interval-us U] [--keep FILE]
//                     [--wait park|spin|backoff]
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "recmap/store.h"
#include "recmap/tailer.h"

namespace {

uint64_t NowNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // one clock for every process
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

void PutU64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint64_t GetU64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

int Producer(const std::string& path, uint64_t n, uint64_t interval_us) {
  auto store = recmap::Store::Open(path, {});
  if (!store.ok()) {
    std::fprintf(stderr, "producer: %s\n", store.status().ToString().c_str());
    return 1;
  }
  for (uint64_t i = 0; i < n; ++i) {
    // Payload: item number, publish time, then some text.
    char buf[64];
    PutU64(buf, i);
    int len = std::snprintf(buf + 16, sizeof(buf) - 16, "item %llu",
                            static_cast<unsigned long long>(i));
    PutU64(buf + 8, NowNanos());
    if (!(*store)->Append(std::string_view(buf, 16 + len)).ok()) return 2;
    if (interval_us > 0) usleep(static_cast<useconds_t>(interval_us));
  }
  std::printf("producer: appended %llu records\n",
              static_cast<unsigned long long>(n));
  return 0;
}

int Consumer(const std::string& path, uint64_t n, recmap::WaitStrategy wait) {
  recmap::Options o;
  o.read_only = true;  // a consumer never writes
  auto store = recmap::Store::Open(path, o);
  if (!store.ok()) return 1;
  auto tailer =
      recmap::Tailer::Create(**store, {.from_sequence = 1, .wait = wait});
  if (!tailer.ok()) return 1;
  std::vector<double> latency_us;
  latency_us.reserve(n);
  uint64_t expect = 0, last_seq = 0;
  bool in_order = true;
  while (expect < n) {
    absl::StatusOr<std::optional<recmap::RecordView>> got =
        (*tailer)->Next(std::chrono::seconds(30));
    if (!got.ok() || !got->has_value()) {
      std::fprintf(stderr, "consumer: gave up waiting at item %llu\n",
                   static_cast<unsigned long long>(expect));
      return 3;
    }
    const uint64_t now = NowNanos();
    const recmap::RecordView& rec = **got;
    if (rec.value.size() < 16) return 4;
    const uint64_t item = GetU64(rec.value.data());
    in_order = in_order && item == expect && rec.sequence > last_seq;
    last_seq = rec.sequence;
    latency_us.push_back((now - GetU64(rec.value.data() + 8)) / 1000.0);
    ++expect;
  }
  std::sort(latency_us.begin(), latency_us.end());
  auto pct = [&](double p) {
    return latency_us[std::min(latency_us.size() - 1,
                               size_t(p * latency_us.size()))];
  };
  std::printf("consumer: received %llu records %s\n",
              static_cast<unsigned long long>(expect),
              in_order ? "in order" : "OUT OF ORDER");
  std::printf(
      "consumer: publish->delivery latency over %zu records: median %.1f us, "
      "p99 %.1f us, max %.1f us\n",
      latency_us.size(), pct(0.5), pct(0.99), latency_us.back());
  return in_order ? 0 : 5;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t n = 2000, interval_us = 200;
  std::string keep;
  recmap::WaitStrategy wait = recmap::WaitStrategy::kPark;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--records")
      n = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--interval-us")
      interval_us = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--keep")
      keep = argv[i + 1];
    else if (a == "--wait")
      wait = std::string(argv[i + 1]) == "spin" ? recmap::WaitStrategy::kSpin
             : std::string(argv[i + 1]) == "backoff"
                 ? recmap::WaitStrategy::kBackoff
                 : recmap::WaitStrategy::kPark;
  }
  std::string dir;
  std::string path = keep;
  if (path.empty()) {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/recmap-pc-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return 1;
    dir = tmpl;
    path = dir + "/queue.rmap";
  }
  {
    recmap::Options o;
    o.create_if_missing = true;
    auto s = recmap::Store::Open(path, o);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
      return 1;
    }
  }
  std::fflush(stdout);
  pid_t consumer = fork();
  if (consumer == 0) {
    int rc = Consumer(path, n, wait);
    std::fflush(stdout);
    _exit(rc);
  }
  usleep(50000);  // let the consumer block first: this measures wake-ups
  pid_t producer = fork();
  if (producer == 0) {
    int rc = Producer(path, n, interval_us);
    std::fflush(stdout);
    _exit(rc);
  }
  int ps = 0, cs = 0;
  waitpid(producer, &ps, 0);
  waitpid(consumer, &cs, 0);
  if (!dir.empty()) std::filesystem::remove_all(dir);
  const bool ok = WIFEXITED(ps) && WEXITSTATUS(ps) == 0 && WIFEXITED(cs) &&
                  WEXITSTATUS(cs) == 0;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
