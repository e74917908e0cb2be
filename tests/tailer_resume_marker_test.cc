// A tailer reads past a resume marker: a writer that resumed a region whose
// tail page a Sync() had closed leaves zeros to the next page and a padding
// record there (docs/FORMAT.md); scans skip it, and so must the tailer.
#include <catch2/catch.hpp>

#include "recmap/tailer.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

TEST_CASE("tailer delivers the records written after a synced, resumed tail",
          "[tailer]") {
  TempDir t;
  const std::string path = t.File("s.rmap");
  {
    std::unique_ptr<Store> s = OpenOrDie(path, SmallOptions());
    for (uint64_t i = 1; i <= 100; ++i) REQUIRE(s->Put(i, Payload(1, i)).ok());
    REQUIRE(s->Sync().ok());
  }
  {
    std::unique_ptr<Store> s = OpenOrDie(path, SmallOptions());
    for (uint64_t i = 101; i <= 200; ++i)
      REQUIRE(s->Put(i, Payload(1, i)).ok());
  }
  bool has_marker = false;
  Options ro;
  ro.read_only = true;
  std::unique_ptr<Store> s = OpenOrDie(path, ro);
  REQUIRE(s->ForEachInRegion(0, [&](const RecordView& v) {
             has_marker = has_marker || v.type == RecordType::kPadding;
             return true;
           }).ok());
  REQUIRE(has_marker);  // the case this test is about
  TailerOptions to;
  to.from_sequence = 1;
  absl::StatusOr<std::unique_ptr<Tailer>> tailer = Tailer::Create(*s, to);
  REQUIRE(tailer.ok());
  for (uint64_t i = 1; i <= 200; ++i) {
    absl::StatusOr<std::optional<RecordView>> got =
        (*tailer)->Next(std::chrono::seconds(5));
    INFO("record " << i << ": " << got.status().ToString());
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    CHECK((*got)->id == i);
    CHECK((*got)->value == Payload(1, i));
  }
  absl::StatusOr<std::optional<RecordView>> more =
      (*tailer)->Next(std::chrono::milliseconds(0));
  REQUIRE(more.ok());
  CHECK(!more->has_value());
}

}  // namespace
}  // namespace recmap::testing
