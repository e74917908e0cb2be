// The tailer's wait strategies (park, spin, backoff): every record exactly
// once and in order across processes, a producer SIGKILLed mid-stream, and
// a waiting tailer stopping when asked. No timing assertions: the only
// deadlines are generous bounds against hangs.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "recmap/store.h"
#include "recmap/tailer.h"
#include "store_peer.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap {
namespace {

using std::chrono::milliseconds;
using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

const char* Name(WaitStrategy w) {
  switch (w) {
    case WaitStrategy::kPark:
      return "park";
    case WaitStrategy::kSpin:
      return "spin";
    case WaitStrategy::kBackoff:
      return "backoff";
  }
  return "?";
}

std::unique_ptr<Store> OpenReader(const std::string& path) {
  Options ro = SmallOptions();
  ro.create_if_missing = false;
  ro.read_only = true;
  return OpenOrDie(path, ro);
}

std::unique_ptr<Tailer> MakeTailer(Store& s, WaitStrategy w) {
  TailerOptions to;
  to.from_sequence = 1;
  to.wait = w;
  // Small bounds so that every phase of kBackoff runs in the tests.
  to.backoff.max_spins = 100;
  to.backoff.max_yields = 10;
  absl::StatusOr<std::unique_ptr<Tailer>> t = Tailer::Create(s, to);
  REQUIRE(t.ok());
  return std::move(*t);
}

std::set<uint64_t> AllSequences(Store& s) {
  std::set<uint64_t> seqs;
  for (uint32_t r = 0; r < s.Stats().regions; ++r) {
    REQUIRE(s.ForEachInRegion(r, [&](const RecordView& v) {
               seqs.insert(v.sequence);
               return true;
             }).ok());
  }
  return seqs;
}

// A producer's options: either prefault mode (the writer's own thread
// populating in small steps must not change what is delivered).
Options ProducerOptions(PrefaultMode pm) {
  SetTuningForTesting({.prefault_step_bytes = 4096});
  Options o = SmallOptions();
  o.prefault_mode = pm;
  return o;
}

TEST_CASE(
    "each wait strategy delivers every record once, in order, across "
    "processes") {
  const WaitStrategy w = GENERATE(WaitStrategy::kPark, WaitStrategy::kSpin,
                                  WaitStrategy::kBackoff);
  const PrefaultMode pm =
      GENERATE(PrefaultMode::kBackground, PrefaultMode::kInline);
  INFO("strategy " << Name(w) << " prefault_mode "
                   << (pm == PrefaultMode::kInline ? "inline" : "background"));
  TempDir dir;
  const std::string path = dir.File("t.rmap");
  { auto s = OpenOrDie(path, SmallOptions()); }
  auto reader = OpenReader(path);
  auto t = MakeTailer(*reader, w);
  constexpr uint64_t kRecords = 20000;
  pid_t pid = testing::ForkChild([&] {
    auto s = Store::Open(path, ProducerOptions(pm));
    if (!s.ok()) return 1;
    for (uint64_t i = 0; i < kRecords; ++i) {
      if (!(*s)->Put(i, Payload(0, i, 100)).ok()) return 2;
      // Now and then a pause, so that the tailer's waits run all phases.
      if (i % 2000 == 0) ::usleep(2000);
    }
    return 0;
  });
  uint64_t last = 0;
  for (uint64_t i = 0; i < kRecords; ++i) {
    absl::StatusOr<std::optional<RecordView>> got =
        t->Next(std::chrono::seconds(60));
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    const RecordView& v = **got;
    REQUIRE(v.sequence > last);
    last = v.sequence;
    REQUIRE(v.id == i);
    REQUIRE(v.value == Payload(0, i, 100));
  }
  CHECK(testing::WaitChild(pid) == 0);
  CHECK(!t->Next(milliseconds(10))->has_value());
  CHECK(StorePeer::Counters(*t).delivered == kRecords);
  CHECK(AllSequences(*reader).size() == kRecords);
  if (w == WaitStrategy::kSpin) CHECK(StorePeer::Counters(*t).futex_waits == 0);
}

TEST_CASE(
    "each wait strategy delivers the records of two producer processes "
    "once each, in sequence order") {
  const WaitStrategy w = GENERATE(WaitStrategy::kPark, WaitStrategy::kSpin,
                                  WaitStrategy::kBackoff);
  INFO("strategy " << Name(w));
  TempDir dir;
  const std::string path = dir.File("t.rmap");
  { auto s = OpenOrDie(path, SmallOptions()); }
  auto reader = OpenReader(path);
  auto t = MakeTailer(*reader, w);
  constexpr uint64_t kPerProducer = 10000;
  // Producer p writes ids p * kPerProducer + i, i ascending, each into a
  // region of its own: the tailer merges two regions by sequence.
  auto produce = [&](uint64_t p) {
    return testing::ForkChild([&, p] {
      auto s = Store::Open(path,
                           ProducerOptions(p == 0 ? PrefaultMode::kInline
                                                  : PrefaultMode::kBackground));
      if (!s.ok()) return 1;
      for (uint64_t i = 0; i < kPerProducer; ++i) {
        const uint64_t id = p * kPerProducer + i;
        if (!(*s)->Put(id, Payload(0, id, 100)).ok()) return 2;
        if (i % 1000 == 0) ::usleep(1000);
      }
      return 0;
    });
  };
  const pid_t a = produce(0);
  const pid_t b = produce(1);
  uint64_t last = 0;
  uint64_t next_id[2] = {0, kPerProducer};
  std::set<uint64_t> seqs;
  for (uint64_t n = 0; n < 2 * kPerProducer; ++n) {
    absl::StatusOr<std::optional<RecordView>> got =
        t->Next(std::chrono::seconds(60));
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    const RecordView& v = **got;
    REQUIRE(v.sequence > last);
    last = v.sequence;
    const int p = v.id < kPerProducer ? 0 : 1;
    REQUIRE(v.id == next_id[p]);
    ++next_id[p];
    REQUIRE(v.value == Payload(0, v.id, 100));
    seqs.insert(v.sequence);
  }
  CHECK(testing::WaitChild(a) == 0);
  CHECK(testing::WaitChild(b) == 0);
  CHECK(!t->Next(milliseconds(10))->has_value());
  CHECK(next_id[0] == kPerProducer);
  CHECK(next_id[1] == 2 * kPerProducer);
  CHECK(StorePeer::Counters(*t).delivered == 2 * kPerProducer);
  CHECK(seqs == AllSequences(*reader));
}

TEST_CASE(
    "each wait strategy delivers every published record of a producer "
    "SIGKILLed mid-stream, nothing torn") {
  const WaitStrategy w = GENERATE(WaitStrategy::kPark, WaitStrategy::kSpin,
                                  WaitStrategy::kBackoff);
  const PrefaultMode pm =
      GENERATE(PrefaultMode::kBackground, PrefaultMode::kInline);
  INFO("strategy " << Name(w) << " prefault_mode "
                   << (pm == PrefaultMode::kInline ? "inline" : "background"));
  std::mt19937_64 rng(std::random_device{}());
  for (int cycle = 0; cycle < 3; ++cycle) {
    TempDir dir;
    const std::string path = dir.File("t.rmap");
    { auto s = OpenOrDie(path, SmallOptions()); }
    auto reader = OpenReader(path);
    auto t = MakeTailer(*reader, w);
    pid_t pid = testing::ForkChild([&] {
      auto s = Store::Open(path, ProducerOptions(pm));
      if (!s.ok()) return 1;
      for (uint64_t i = 0;; ++i) {
        if (!(*s)->Put(i, Payload(0, i, 100)).ok()) return 2;
      }
    });
    const uint64_t kill_after = 500 + rng() % 5000;
    uint64_t n = 0, last = 0;
    std::set<uint64_t> seqs;
    bool killed = false;
    while (true) {
      absl::StatusOr<std::optional<RecordView>> got =
          t->Next(killed ? milliseconds(500) : milliseconds(60000));
      REQUIRE(got.ok());
      if (!got->has_value()) {
        REQUIRE(killed);  // nothing for 60 s from a live producer: a hang
        break;
      }
      const RecordView& v = **got;
      REQUIRE(v.sequence > last);
      last = v.sequence;
      REQUIRE(v.id == n);
      REQUIRE(v.value == Payload(0, n, 100));
      seqs.insert(v.sequence);
      ++n;
      if (!killed && n == kill_after) {
        REQUIRE(::kill(pid, SIGKILL) == 0);
        CHECK(testing::WaitChild(pid) != 0);
        killed = true;
      }
    }
    // Every record published before the kill (below the committed tail
    // that the dead writer left) was delivered.
    CHECK(seqs == AllSequences(*reader));
    CHECK(n >= kill_after);
  }
}

TEST_CASE("a waiting tailer stops when asked, whatever its strategy") {
  const WaitStrategy w = GENERATE(WaitStrategy::kPark, WaitStrategy::kSpin,
                                  WaitStrategy::kBackoff);
  INFO("strategy " << Name(w));
  TempDir dir;
  const std::string path = dir.File("t.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  REQUIRE(s->Put(1, "one").ok());
  auto t = MakeTailer(*s, w);
  REQUIRE(t->Next(milliseconds(0))->has_value());
  std::atomic<bool> started{false};
  auto waiter = std::async(std::launch::async, [&] {
    started = true;
    return t->Next(std::chrono::hours(1)).status();
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(50));  // into its wait, usually
  t->RequestStop();
  // Generous: a hang (an hour-long wait not cut short) fails here.
  REQUIRE(waiter.wait_for(std::chrono::seconds(60)) ==
          std::future_status::ready);
  CHECK(absl::IsCancelled(waiter.get()));
  CHECK(t->stop_requested());
  // Sticky: later calls return Cancelled and deliver nothing.
  REQUIRE(s->Put(2, "two").ok());
  CHECK(absl::IsCancelled(t->Next(milliseconds(0)).status()));
}

TEST_CASE("a spinning tailer returns when its timeout passes") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("t.rmap"), SmallOptions());
  auto t = MakeTailer(*s, WaitStrategy::kSpin);
  absl::StatusOr<std::optional<RecordView>> got = t->Next(milliseconds(20));
  REQUIRE(got.ok());
  CHECK(!got->has_value());
  CHECK(StorePeer::Counters(*t).spins > 0);
  CHECK(StorePeer::Counters(*t).futex_waits == 0);
}

}  // namespace
}  // namespace recmap
