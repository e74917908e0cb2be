// Compaction writes the live records in ascending sequence order whatever
// the original's layout: several writers' regions interleaved in sequence
// (the copy merges them), and a region whose log is not in sequence order
// (only a hand-made log has one; the copy sorts it).
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recmap/compaction.h"
#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

struct Rec {
  uint64_t id, sequence;
  std::string value;
  bool operator==(const Rec&) const = default;
};

// Every record of the log, in log order.
std::vector<Rec> Log(const std::string& path) {
  Options o = SmallOptions();
  o.create_if_missing = false;
  o.read_only = true;
  auto s = OpenOrDie(path, o);
  std::vector<Rec> log;
  REQUIRE(s->ForEachRecord([&](const RecordView& v) {
             log.push_back(Rec{v.id, v.sequence, std::string(v.value)});
             return true;
           }).ok());
  return log;
}

// The latest put of each id, in ascending sequence order: what the
// compacted log must be.
std::vector<Rec> Expected(const std::string& path) {
  Options o = SmallOptions();
  o.create_if_missing = false;
  o.read_only = true;
  auto s = OpenOrDie(path, o);
  std::vector<Rec> live;
  REQUIRE(s->ForEachLive([&](const RecordView& v) {
             live.push_back(Rec{v.id, v.sequence, std::string(v.value)});
             return true;
           }).ok());
  return live;
}

void CheckCompactsTo(const std::string& path, const std::vector<Rec>& want) {
  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  REQUIRE(r.ok());
  CHECK(r->records_kept == want.size());
  const std::vector<Rec> log = Log(path);
  CHECK(log == want);
  for (size_t i = 1; i < log.size(); ++i) {
    INFO("record " << i);
    REQUIRE(log[i - 1].sequence < log[i].sequence);
  }
}

TEST_CASE("compaction merges interleaved writers' regions in sequence order") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  {
    auto s = OpenOrDie(path, SmallOptions());
    // Three writers of one handle, each in its own region, taking turns:
    // every region's log interleaves with the others' in sequence, and
    // later versions of an id land in another writer's region.
    std::vector<std::unique_ptr<Writer>> w;
    for (int k = 0; k < 3; ++k) {
      absl::StatusOr<std::unique_ptr<Writer>> nw = s->NewWriter();
      REQUIRE(nw.ok());
      w.push_back(std::move(*nw));
    }
    for (uint64_t i = 0; i < 3000; ++i) {
      const uint64_t id = (i * 7) % 1100;
      REQUIRE(w[i % 3]->Put(id, Payload(i % 3, i, 150)).ok());
      if (i % 13 == 0) REQUIRE(w[(i + 1) % 3]->Delete((i * 5) % 1100).ok());
    }
    CHECK(s->Stats().regions > 3);
  }
  const std::vector<Rec> want = Expected(path);
  REQUIRE(want.size() > 500);
  CheckCompactsTo(path, want);
}

TEST_CASE("compaction sorts a region whose log is not in sequence order") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  {
    auto s = OpenOrDie(path, SmallOptions());
    absl::StatusOr<std::unique_ptr<Writer>> w = s->NewWriter();
    REQUIRE(w.ok());
    // One region, sequences out of log order; id 2's later version is
    // earlier in the log.
    const std::vector<std::pair<uint64_t, uint64_t>> writes = {
        {1, 100}, {2, 90}, {3, 50}, {2, 40}, {4, 75}, {5, 10}};
    for (const auto& [id, seq] : writes) {
      REQUIRE(StorePeer::Rep(*s)
                  .WriteWithSequence(**w, RecordType::kPut, id, seq,
                                     "v" + std::to_string(seq))
                  .ok());
    }
  }
  const std::vector<Rec> want = {{5, 10, "v10"},
                                 {3, 50, "v50"},
                                 {4, 75, "v75"},
                                 {2, 90, "v90"},
                                 {1, 100, "v100"}};
  CHECK(Expected(path) == want);
  CheckCompactsTo(path, want);
}

}  // namespace
}  // namespace recmap
