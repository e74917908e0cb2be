// The tailing reader: order, resumption, the gap rule, and blocking.
#include "recmap/tailer.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"

namespace recmap {
namespace {

using std::chrono::milliseconds;
using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

std::unique_ptr<Tailer> MakeTailer(Store& s, uint64_t from) {
  TailerOptions to;
  to.from_sequence = from;
  absl::StatusOr<std::unique_ptr<Tailer>> t = Tailer::Create(s, to);
  REQUIRE(t.ok());
  return std::move(*t);
}

// Every record of the store (all regions), as sequence numbers.
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

TEST_CASE("tailer delivers puts and deletes in sequence order") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("t.rmap"), SmallOptions());
  for (uint64_t i = 0; i < 1000; ++i)
    REQUIRE(s->Put(i % 100, Payload(0, i)).ok());
  REQUIRE(s->Delete(5).ok());
  auto t = MakeTailer(*s, 1);
  uint64_t n = 0, last = 0;
  while (true) {
    absl::StatusOr<std::optional<RecordView>> got = t->Next(milliseconds(0));
    REQUIRE(got.ok());
    if (!got->has_value()) break;
    const RecordView& v = **got;
    CHECK(v.sequence > last);
    last = v.sequence;
    if (n < 1000) {
      CHECK(v.type == RecordType::kPut);
      CHECK(v.id == n % 100);
      CHECK(v.value == Payload(0, n));
    } else {
      CHECK(v.type == RecordType::kDelete);
      CHECK(v.id == 5);
    }
    ++n;
  }
  CHECK(n == 1001);
  CHECK(t->next_sequence() == last + 1);
  CHECK(StorePeer::Counters(*t).gaps_skipped == 0);
}

TEST_CASE("tailer resumes from a sequence number and can skip deletes") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("t.rmap"), SmallOptions());
  std::vector<uint64_t> seqs;
  for (uint64_t i = 0; i < 500; ++i) {
    absl::StatusOr<uint64_t> id = s->Append(Payload(1, i));
    REQUIRE(id.ok());
    seqs.push_back(*id);  // Append's id is the sequence number
    if (i % 50 == 0) REQUIRE(s->Delete(*id).ok());
  }
  TailerOptions to;
  to.from_sequence = seqs[300];
  to.include_deletes = false;
  auto t = Tailer::Create(*s, to);
  REQUIRE(t.ok());
  size_t k = 300;
  while (true) {
    absl::StatusOr<std::optional<RecordView>> got = (*t)->Next(milliseconds(0));
    REQUIRE(got.ok());
    if (!got->has_value()) break;
    const RecordView& v = **got;
    REQUIRE(k < seqs.size());
    CHECK(v.type == RecordType::kPut);
    CHECK(v.sequence == seqs[k]);
    CHECK(v.value == Payload(1, k));
    ++k;
  }
  CHECK(k == seqs.size());

  // from_sequence 0: only what comes after creation.
  auto now = MakeTailer(*s, 0);
  REQUIRE(!now->Next(milliseconds(0))->has_value());
  REQUIRE(s->Put(77, "new").ok());
  absl::StatusOr<std::optional<RecordView>> got = now->Next(milliseconds(0));
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->value == "new");
}

TEST_CASE("tailer follows several writer processes in sequence order") {
  TempDir dir;
  const std::string path = dir.File("t.rmap");
  { auto s = OpenOrDie(path, SmallOptions()); }
  constexpr int kWriters = 3;
  constexpr uint64_t kPerWriter = 3000;
  Options ro = SmallOptions();
  ro.create_if_missing = false;
  ro.read_only = true;
  auto reader = OpenOrDie(path, ro);
  auto t = MakeTailer(*reader, 1);
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pids.push_back(testing::ForkChild([&, w] {
      auto s = Store::Open(path, SmallOptions());
      if (!s.ok()) return 1;
      for (uint64_t i = 0; i < kPerWriter; ++i) {
        if (!(*s)->Put(w * kPerWriter + i, Payload(w, i, 100)).ok()) return 2;
      }
      return 0;
    }));
  }
  uint64_t last = 0;
  std::set<uint64_t> got_seqs;
  std::vector<uint64_t> per_writer(kWriters, 0);
  while (got_seqs.size() < kWriters * kPerWriter) {
    absl::StatusOr<std::optional<RecordView>> got =
        t->Next(std::chrono::seconds(60));
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    const RecordView& v = **got;
    REQUIRE(v.sequence > last);
    last = v.sequence;
    got_seqs.insert(v.sequence);
    const uint64_t w = v.id / kPerWriter, i = v.id % kPerWriter;
    // Each writer's records arrive in its own order.
    CHECK(i == per_writer[w]);
    per_writer[w] = i + 1;
    CHECK(v.value == Payload(w, i, 100));
  }
  for (pid_t p : pids) CHECK(testing::WaitChild(p) == 0);
  CHECK(got_seqs == AllSequences(*reader));
  CHECK(!t->Next(milliseconds(0))->has_value());
}

// A child that owns a region and has allocated a sequence number it has not
// published (as if stopped between allocation and publication).
pid_t StartStalledWriter(const std::string& path, uint64_t* stalled_seq) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = testing::ForkChild([&] {
    ::close(fds[0]);
    auto s = Store::Open(path, SmallOptions());
    if (!s.ok()) return 1;
    auto w = (*s)->NewWriter();
    if (!w.ok() || !(*w)->Put(1, "claims a region").ok()) return 2;
    StoreRep* rep = &StorePeer::Rep(**s);
    const RegionRef& r = rep->region((*w)->region()).ref;
    r.pending_sequence().store(kPendingUnknown);
    uint64_t seq = rep->next_sequence().fetch_add(1);
    r.pending_sequence().store(seq);
    if (::write(fds[1], &seq, sizeof(seq)) != sizeof(seq)) return 3;
    ::pause();
    return 0;
  });
  ::close(fds[1]);
  REQUIRE(::read(fds[0], stalled_seq, sizeof(*stalled_seq)) ==
          sizeof(*stalled_seq));
  ::close(fds[0]);
  return pid;
}

TEST_CASE("tailer waits for a live writer's gap and skips a dead one's") {
  TempDir dir;
  const std::string path = dir.File("t.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  REQUIRE(s->Put(1, "before").ok());
  auto t = MakeTailer(*s, 1);
  REQUIRE(t->Next(milliseconds(0))->has_value());

  uint64_t stalled = 0;
  pid_t pid = StartStalledWriter(path, &stalled);
  // The child's first put and its stalled sequence come before ours.
  absl::StatusOr<std::optional<RecordView>> got =
      t->Next(std::chrono::seconds(30));
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->value == "claims a region");
  REQUIRE(s->Put(2, "after the gap").ok());
  // The gap belongs to a live writer: nothing past it is delivered.
  got = t->Next(milliseconds(200));
  REQUIRE(got.ok());
  CHECK(!got->has_value());
  CHECK(t->next_sequence() == stalled);
  ::kill(pid, SIGKILL);
  CHECK(testing::WaitChild(pid) == 128 + SIGKILL);
  // The writer is dead: the gap is permanent.
  got = t->Next(std::chrono::seconds(30));
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->value == "after the gap");
  CHECK((*got)->sequence == stalled + 1);
  CHECK(StorePeer::Counters(*t).gaps_skipped == 1);
}

TEST_CASE("an idle tailer blocks without spinning and wakes on a write") {
  TempDir dir;
  const std::string path = dir.File("t.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  REQUIRE(s->Put(1, "x").ok());
  auto t = MakeTailer(*s, 2);
  // Nothing to deliver: one blocking wait that times out, no short waits.
  absl::StatusOr<std::optional<RecordView>> got = t->Next(milliseconds(300));
  REQUIRE(got.ok());
  CHECK(!got->has_value());
  CHECK(StorePeer::Counters(*t).short_waits == 0);
  CHECK(StorePeer::Counters(*t).futex_waits >= 1);
  CHECK(StorePeer::Counters(*t).futex_waits <= 3);

  // A writer (own handle, as another process would) appends once the
  // tailer has asked to be woken.
  std::thread writer([&] {
    auto w = OpenOrDie(path, SmallOptions());
    for (int i = 0; i < 100000 && StorePeer::Rep(*w).tail_waiters().load() == 0;
         ++i)
      ::usleep(100);
    REQUIRE(w->Put(2, "wake up").ok());
  });
  got = t->Next(std::chrono::seconds(60));
  writer.join();
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->value == "wake up");
}

}  // namespace
}  // namespace recmap
