// Compaction as a library function: what it keeps, what it drops, and its
// refusal to run under a writer.
#include "recmap/compaction.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>

#include "compaction.h"
#include "recmap/store.h"
#include "store_rep.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

struct Live {
  uint64_t seq;
  std::string value;
  bool operator==(const Live&) const = default;
};

std::map<uint64_t, Live> LiveMap(const std::string& path) {
  Options o = SmallOptions();
  o.create_if_missing = false;
  o.read_only = true;
  auto s = OpenOrDie(path, o);
  std::map<uint64_t, Live> m;
  REQUIRE(s->ForEachLive([&](const RecordView& v) {
             m[v.id] = Live{v.sequence, std::string(v.value)};
             return true;
           }).ok());
  return m;
}

// 500 ids, three versions each, every 10th deleted.
void Fill(const std::string& path) {
  auto s = OpenOrDie(path, SmallOptions());
  for (int round = 0; round < 3; ++round) {
    for (uint64_t id = 0; id < 500; ++id) {
      REQUIRE(s->Put(id, Payload(round, id)).ok());
    }
  }
  for (uint64_t id = 0; id < 500; id += 10) REQUIRE(s->Delete(id).ok());
}

TEST_CASE("compaction keeps the latest live version with its sequence") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  Fill(path);
  const auto before = LiveMap(path);
  REQUIRE(before.size() == 450);
  struct stat st0;
  REQUIRE(::stat(path.c_str(), &st0) == 0);

  uint64_t progress_calls = 0;
  CompactionOptions co;
  co.progress = [&](const CompactionProgress& p) {
    ++progress_calls;
    CHECK(p.records_done <= p.records_total);
  };
  absl::StatusOr<CompactionResult> r = Compact(path, co);
  REQUIRE(r.ok());
  CHECK(r->records_before == 1550);
  CHECK(r->records_kept == 450);
  CHECK(r->records_dropped == 1100);
  CHECK(r->bytes_before == static_cast<uint64_t>(st0.st_size));
  CHECK(r->bytes_after < r->bytes_before);
  CHECK(progress_calls >= 1);
  CHECK(LiveMap(path) == before);
  CHECK(::access((path + ".compact-tmp").c_str(), F_OK) != 0);

  // The compacted store holds nothing else, and new writes continue above
  // the kept sequence numbers.
  auto s = OpenOrDie(path, SmallOptions());
  StoreStats st = s->Stats();
  CHECK(st.records == 450);
  CHECK(st.tombstones == 0);
  uint64_t max_seq = 0;
  for (const auto& [id, l] : before) max_seq = std::max(max_seq, l.seq);
  absl::StatusOr<uint64_t> id = s->Append("after");
  REQUIRE(id.ok());
  CHECK(*id > max_seq);
}

TEST_CASE("compaction leaves no index file behind, stale or temporary") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  // This small store gets an index file.
  SetTuningForTesting({.persist_index_min_records = 1});
  Options o = SmallOptions();
  {
    auto s = OpenOrDie(path, o);
    for (int round = 0; round < 2; ++round) {
      for (uint64_t id = 0; id < 300; ++id)
        REQUIRE(s->Put(id, Payload(round, id)).ok());
    }
  }
  REQUIRE(::access((path + ".idx").c_str(), F_OK) == 0);
  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  REQUIRE(r.ok());
  CHECK(r->records_kept == 300);
  CHECK(::access((path + ".idx").c_str(), F_OK) != 0);
  CHECK(::access((path + ".compact-tmp.idx").c_str(), F_OK) != 0);
  {
    // The next clean close writes the new generation's index, and the
    // open after it uses it.
    auto s = OpenOrDie(path, o);
    CHECK(*s->Get(7) == Payload(1, 7));
  }
  CHECK(::access((path + ".idx").c_str(), F_OK) == 0);
  auto s = OpenOrDie(path, o);
  CHECK(s->last_recovery().persisted_index_used);
  CHECK(*s->Get(299) == Payload(1, 299));
}

TEST_CASE("compaction with an output path leaves the original alone") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  Fill(path);
  const std::string orig = testing::ReadFile(path);
  CompactionOptions co;
  co.output = dir.File("out.rmap");
  absl::StatusOr<CompactionResult> r = Compact(path, co);
  REQUIRE(r.ok());
  CHECK(r->path == co.output);
  CHECK(testing::ReadFile(path) == orig);
  CHECK(LiveMap(co.output) == LiveMap(path));
  // The output must not exist already.
  absl::StatusOr<CompactionResult> again = Compact(path, co);
  CHECK(absl::IsAlreadyExists(again.status()));
}

TEST_CASE("compaction refuses while the store is open for writing") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  Fill(path);
  auto writer = OpenOrDie(path, SmallOptions());
  REQUIRE(writer->Put(7, "x").ok());
  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  REQUIRE(absl::IsFailedPrecondition(r.status()));
  CHECK_THAT(std::string(r.status().message()),
             Catch::Contains("open for writing"));
  CHECK_THAT(std::string(r.status().message()),
             Catch::Contains(std::to_string(::getpid())));
  writer.reset();
  CHECK(Compact(path, CompactionOptions()).ok());
}

TEST_CASE("a writer opening during compaction waits and gets the new file") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  Fill(path);
  auto before = LiveMap(path);
  // A thread with its own handle: OFD locks conflict between handles of
  // one process as between processes (a forked child would inherit the
  // compactor's lock descriptor).
  std::thread writer;
  absl::Status put_status = absl::UnknownError("not run");
  auto step_hook = [&](CompactionStep step) {
    if (step != CompactionStep::kCopied) return;
    writer = std::thread([&] {
      absl::StatusOr<std::unique_ptr<Store>> s =
          Store::Open(path, SmallOptions());
      put_status =
          s.ok() ? (*s)->Put(100000, "written after compaction") : s.status();
    });
    ::usleep(100000);  // give it time to block on the recovery lock
  };
  REQUIRE(Compact(path, CompactionOptions(), step_hook).ok());
  REQUIRE(writer.joinable());
  writer.join();
  CHECK(put_status.ok());
  auto after = LiveMap(path);
  REQUIRE(after.count(100000) == 1);
  CHECK(after[100000].value == "written after compaction");
  after.erase(100000);
  CHECK(after == before);
}

TEST_CASE("a second compaction of the same store is refused") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  Fill(path);
  absl::Status inner;
  auto step_hook = [&](CompactionStep step) {
    if (step == CompactionStep::kLocked)
      inner = Compact(path, CompactionOptions()).status();
  };
  REQUIRE(Compact(path, CompactionOptions(), step_hook).ok());
  CHECK(absl::IsFailedPrecondition(inner));
  CHECK_THAT(std::string(inner.message()),
             Catch::Contains("another compaction"));
}

TEST_CASE("compacting an empty store and a missing file") {
  TempDir dir;
  const std::string path = dir.File("e.rmap");
  { auto s = OpenOrDie(path, SmallOptions()); }
  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  REQUIRE(r.ok());
  CHECK(r->records_kept == 0);
  CHECK(absl::IsNotFound(
      Compact(dir.File("missing.rmap"), CompactionOptions()).status()));
}

}  // namespace
}  // namespace recmap
