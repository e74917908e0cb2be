// The background index after a crash: a writer process appends until
// several regions have sealed, waits until its background index writer has
// put "<store>.idx" beside the store, keeps appending and is SIGKILLed
// mid-stream -- no handle ever closed cleanly. Then:
//   - the open after the crash adopts that index and scans only the log
//     past it, and every acknowledged record reads back byte for byte,
//     with exact counts;
//   - the same index made stale (a covered tail past the committed tail;
//     the store compacted into a new file) is rejected, and the log
//     alone gives the same answers;
//   - the same index damaged (a bit flipped anywhere) is rejected.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "crash/crash_util.h"
#include "persisted_index.h"
#include "recmap/compaction.h"
#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap::testing {
namespace {

#define NOTE(msg) CRASH_NOTE("background_index", msg)

constexpr size_t kMaxPayload = 400;
constexpr uint64_t kPhase1 = 3000;       // ~11 regions of 64 KiB
constexpr uint64_t kKillAfter = 1500;    // more records, index already there
constexpr uint64_t kChildCap = 2000000;  // the child never gets this far
constexpr uint64_t kIndexSeen = ~uint64_t{0};

Options CrashOptions() {
  SetTuningForTesting({.persist_index_min_records = 200,
                       .persist_index_background_min_records = 200});
  Options o = SmallOptions();
  o.persist_index_in_background = true;
  return o;
}

Options ReaderOptions() {
  Options o = CrashOptions();
  o.create_if_missing = false;
  o.read_only = true;
  return o;
}

bool WriteAll(int fd, uint64_t v) {
  return ::write(fd, &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v));
}

// 8-byte messages on a pipe are written whole (< PIPE_BUF).
bool ReadOne(int fd, uint64_t* v) {
  size_t got = 0;
  while (got < sizeof(*v)) {
    ssize_t r = ::read(fd, reinterpret_cast<char*>(v) + got, sizeof(*v) - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// The child: puts ids 0, 1, 2, ... (payload PayloadFor(id)), reporting the
// count acknowledged so far; after kPhase1 waits (bounded) for the index
// file, reports kIndexSeen, and goes on until killed.
int Child(const std::string& path, int fd) {
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, CrashOptions());
  if (!s.ok()) return 2;
  absl::StatusOr<std::unique_ptr<Writer>> w = (*s)->NewWriter();
  if (!w.ok()) return 3;
  for (uint64_t id = 0; id < kChildCap; ++id) {
    if (id == kPhase1) {
      bool seen = false;
      for (int i = 0; i < 6000 && !seen; ++i) {
        seen = std::filesystem::exists(IndexPathFor(path)) &&
               StorePeer::Rep(**s).IndexPersisterIdle();
        if (!seen) ::usleep(10000);
      }
      if (!seen || !WriteAll(fd, kIndexSeen)) return 4;
    }
    if (!(*w)->Put(id, PayloadFor(id, kMaxPayload)).ok()) return 5;
    if (id % 16 == 15 && !WriteAll(fd, id + 1)) return 6;
  }
  ::pause();
  return 7;
}

// Runs the child, kills it once it has acknowledged kPhase1 + kKillAfter
// records after seeing the index, and returns the count it acknowledged.
uint64_t RunKilledWriter(const std::string& path) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ForkChild([&] {
    ::close(fds[0]);
    return Child(path, fds[1]);
  });
  ::close(fds[1]);
  uint64_t acked = 0, v = 0;
  bool seen = false, killed = false;
  while (ReadOne(fds[0], &v)) {
    if (v == kIndexSeen) {
      seen = true;
      continue;
    }
    acked = std::max(acked, v);
    if (seen && !killed && acked >= kPhase1 + kKillAfter) {
      REQUIRE(::kill(pid, SIGKILL) == 0);
      killed = true;  // read on: reports already in the pipe count too
    }
  }
  ::close(fds[0]);
  const int status = WaitChild(pid);
  INFO("child status " << status);
  REQUIRE(seen);
  REQUIRE(killed);
  REQUIRE(status == 128 + SIGKILL);
  REQUIRE(std::filesystem::exists(IndexPathFor(path)));
  return acked;
}

// Every acknowledged record is there byte for byte; the records present are
// exactly ids [0, m) for some m >= acked (a record published after the
// last report may be there too), each with its own payload.
void CheckRecords(Store& s, uint64_t acked) {
  for (uint64_t id = 0; id < acked; ++id) {
    absl::StatusOr<std::string_view> got = s.Get(id);
    if (!got.ok() || *got != PayloadFor(id, kMaxPayload)) {
      NOTE("id " << id << ": " << got.status().ToString());
      REQUIRE(got.ok());
      REQUIRE(*got == PayloadFor(id, kMaxPayload));
    }
  }
  uint64_t m = 0, bad = 0;
  std::vector<bool> present;
  REQUIRE(s.ForEachLive([&](const RecordView& r) {
             if (r.id >= kChildCap ||
                 !PayloadMatches(r.id, r.value, kMaxPayload))
               ++bad;
             if (r.id < kChildCap) {
               if (present.size() <= r.id) present.resize(r.id + 1);
               present[r.id] = true;
               m = std::max(m, r.id + 1);
             }
             return true;
           }).ok());
  CHECK(bad == 0);
  CHECK(m >= acked);
  uint64_t holes = 0;
  for (uint64_t id = 0; id < m; ++id) holes += !present[id];
  CHECK(holes == 0);
  const StoreStats st = s.Stats();
  CHECK(st.live_records == m);
  CHECK(st.records == m);
  CHECK(st.tombstones == 0);
  CHECK(s.Get(m).status().code() == absl::StatusCode::kNotFound);
  RECMAP_FIGURES("background_index: acknowledged=%llu present=%llu",
                 static_cast<unsigned long long>(acked),
                 static_cast<unsigned long long>(m));
}

const RecoveryReport& Report(Store& s) { return s.last_recovery(); }

// A child that puts ids from `start` on, reporting every 16 acknowledged,
// until killed.
int Appender(const std::string& path, uint64_t start, int fd) {
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, CrashOptions());
  if (!s.ok()) return 2;
  absl::StatusOr<std::unique_ptr<Writer>> w = (*s)->NewWriter();
  if (!w.ok()) return 3;
  for (uint64_t id = start; id < kChildCap; ++id) {
    if (!(*w)->Put(id, PayloadFor(id, kMaxPayload)).ok()) return 5;
    if (id % 16 == 15 && !WriteAll(fd, id + 1)) return 6;
  }
  ::pause();
  return 7;
}

TEST_CASE(
    "background index: a writer killed mid-stream, reopened from its "
    "index",
    "[crash][index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const uint64_t acked = RunKilledWriter(path);
  // What the killed writer's index covers (its background writer covers
  // the log every 200 ms, so how much is left uncovered depends on when
  // the kill came: possibly nothing).
  uint64_t covered = 0;
  {
    Options ro = ReaderOptions();
    ro.persist_index = false;
    auto probe = OpenOrDie(path, ro);
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix = PersistedIndex::Load(
        IndexPathFor(path), probe->info().uuid, probe->info().region_size);
    REQUIRE(ix.ok());
    for (const IndexedRegion& g : (*ix)->regions()) covered += g.records;
  }
  Options o = CrashOptions();
  o.create_if_missing = false;
  auto s = OpenOrDie(path, o);
  INFO(Report(*s).persisted_index_rejected);
  CHECK(Report(*s).full_recovery);
  CHECK(Report(*s).persisted_index_used);
  const uint64_t records = s->Stats().records;
  CHECK(covered > 0);
  // Exactly the records past the covered tails are read at open.
  CHECK(Report(*s).scanned_records == records - covered);
  CHECK(Report(*s).scanned_records < records);
  RECMAP_FIGURES("background_index: records=%llu scanned_at_open=%llu",
                 static_cast<unsigned long long>(records),
                 static_cast<unsigned long long>(Report(*s).scanned_records));
  CheckRecords(*s, acked);
  // Writing on after the crash: the new records win, the index is kept up.
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  REQUIRE((*w)->Put(0, "zero again").ok());
  absl::StatusOr<std::string_view> zero = s->Get(0);
  REQUIRE(zero.ok());
  CHECK(*zero == "zero again");
}

TEST_CASE(
    "background index: writers killed at random instants, in a batch or "
    "not",
    "[crash][index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const uint64_t cycles = ScaledCount(30);
  std::mt19937_64 rng(20261202);
  uint64_t start = 0, updating = 0, used = 0;
  for (uint64_t c = 0; c < cycles; ++c) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ForkChild([&] {
      ::close(fds[0]);
      return Appender(path, start, fds[1]);
    });
    ::close(fds[1]);
    const uint64_t kill_at = start + 300 + rng() % 3000;
    uint64_t acked = start, v = 0;
    bool killed = false;
    while (ReadOne(fds[0], &v)) {
      acked = std::max(acked, v);
      if (!killed && acked >= kill_at) {
        REQUIRE(::kill(pid, SIGKILL) == 0);
        killed = true;
      }
    }
    ::close(fds[0]);
    REQUIRE(WaitChild(pid) == 128 + SIGKILL);
    INFO("cycle " << c << ", acknowledged " << acked);
    {
      // What the killed writer's index writer left: perhaps a batch in
      // progress. A read-only open must then still be exact.
      Options o = ReaderOptions();
      o.persist_index = false;
      auto probe = OpenOrDie(path, o);
      absl::StatusOr<std::unique_ptr<PersistedIndex>> ix = PersistedIndex::Load(
          IndexPathFor(path), probe->info().uuid, probe->info().region_size);
      if (ix.ok() && (*ix)->was_updating()) ++updating;
    }
    {
      auto s = OpenOrDie(path, ReaderOptions());
      used += Report(*s).persisted_index_used;
      CheckRecords(*s, acked);
    }
    // A writable open repairs the file and covers the rest; the next
    // cycle appends after what is there.
    auto s = OpenOrDie(path, []() {
      Options o = CrashOptions();
      o.create_if_missing = false;
      return o;
    }());
    CheckRecords(*s, acked);
    start = s->Stats().live_records;
  }
  RECMAP_FIGURES(
      "background_index kill cycles=%llu index_used=%llu "
      "left_in_a_batch=%llu records=%llu",
      static_cast<unsigned long long>(cycles),
      static_cast<unsigned long long>(used),
      static_cast<unsigned long long>(updating),
      static_cast<unsigned long long>(start));
  CHECK(used > 0);
}

TEST_CASE("background index: made stale, it is rejected", "[crash][index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const uint64_t acked = RunKilledWriter(path);
  {
    // The kill may land inside a header write of the index file, which is
    // then rejected for its header checksum before the rules tested here
    // are reached: a clean close, its index pass run to the tail, leaves a
    // whole file.
    Options o = CrashOptions();
    o.create_if_missing = false;
    o.persist_index_in_background = false;
    auto s = OpenOrDie(path, o);
    REQUIRE(s->Close().ok());
  }
  const std::string saved = ReadFile(IndexPathFor(path));
  REQUIRE(!saved.empty());

  SECTION("a covered tail past the committed tail") {
    {
      // As if the store file were older than the index (an old copy
      // restored): the index covers records the log does not hold.
      Options o = CrashOptions();
      o.create_if_missing = false;
      o.read_only = true;
      o.persist_index = false;
      auto s = OpenOrDie(path, o);
      absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
          PersistedIndexWriter::Open(IndexPathFor(path), s->info().uuid,
                                     s->info().region_size);
      REQUIRE(w.ok());
      bool found = false;
      for (uint32_t i = 0; i < (*w)->regions().size() && !found; ++i) {
        IndexedRegion g = (*w)->regions()[i];
        const uint64_t tail = s->Stats().region_stats[i].committed_tail;
        if (g.tail > kRegionDataOffset && tail + 8 <= s->info().region_size) {
          g.tail = tail + 8;
          (*w)->BeginUpdate(i);
          (*w)->SetRegion(i, g);
          (*w)->EndUpdate();
          found = true;
        }
      }
      REQUIRE(found);
    }
    auto s = OpenOrDie(path, ReaderOptions());
    CHECK_FALSE(Report(*s).persisted_index_used);
    CHECK_THAT(Report(*s).persisted_index_rejected,
               Catch::Contains("committed tail"));
    CheckRecords(*s, acked);
  }
  SECTION("the store compacted into a new file") {
    CompactionOptions co;
    absl::StatusOr<CompactionResult> r = Compact(path, co);
    REQUIRE(r.ok());
    WriteFile(IndexPathFor(path), saved);
    auto s = OpenOrDie(path, ReaderOptions());
    CHECK_FALSE(Report(*s).persisted_index_used);
    CHECK_THAT(Report(*s).persisted_index_rejected,
               Catch::Contains("another store"));
    CheckRecords(*s, acked);
  }
}

TEST_CASE("background index: damaged, it is rejected", "[crash][index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const uint64_t acked = RunKilledWriter(path);
  {
    // A writable open finishes what the killed writer's last batch left
    // (its page sums), so that every page is checked again.
    Options o = CrashOptions();
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    REQUIRE(Report(*s).persisted_index_used);
  }
  const std::string saved = ReadFile(IndexPathFor(path));
  REQUIRE(saved.size() > 3 * kIndexPageSize);
  {
    auto s = OpenOrDie(path, ReaderOptions());
    REQUIRE(Report(*s).persisted_index_used);
  }
  // A bit in the header, the region entries, the table and the page sums.
  std::vector<size_t> offsets = {8,
                                 12,
                                 40,
                                 56,
                                 200,
                                 kIndexPageSize + 8,
                                 saved.size() / 2,
                                 saved.size() - 20,
                                 saved.size() - 1};
  for (size_t at : offsets) {
    std::string bad = saved;
    bad[at] ^= 0x10;
    WriteFile(IndexPathFor(path), bad);
    auto s = OpenOrDie(path, ReaderOptions());
    INFO("bit flipped at offset " << at);
    CHECK_FALSE(Report(*s).persisted_index_used);
    CHECK_FALSE(Report(*s).persisted_index_rejected.empty());
    CHECK(Report(*s).scanned_records == s->Stats().records);
    CheckRecords(*s, acked);
  }
}

}  // namespace
}  // namespace recmap::testing
