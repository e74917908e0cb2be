// StoreIndex (store/store_index.h) over a log written by hand: following
// the log, latest-write-wins, deletes, batched and ordered reads. The
// persisted-index layer is exercised by persisted_index_test and
// index_persister_test through whole stores.
#include "store_index.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "region_set_fixture.h"

namespace recmap {
namespace {

using testing::RegionSetFixture;

struct IndexFixture : RegionSetFixture {
  IndexFixture() : RegionSetFixture(2) {
    LoadAll(2);
    REQUIRE(set().Format(0, /*fresh=*/true).ok());
    REQUIRE(set().Format(1, /*fresh=*/true).ok());
    StoreIndex::Config c;
    c.path = &path();
    c.regions = &set();
    c.shared_page = base() + kSharedPageOffset;
    index.Init(c);
  }
  StoreIndex index;
};

std::string ValueOf(StoreIndex& index, uint64_t id) {
  absl::StatusOr<RecordView> v = index.Lookup(id);
  return v.ok() ? std::string(v->value) : v.status().ToString();
}

TEST_CASE("StoreIndex indexes recovered records and follows the log",
          "[store_index]") {
  IndexFixture f;
  f.Append(0, RecordType::kPut, 7, 1, "a");
  f.Append(0, RecordType::kPut, 8, 2, "b");
  const ScanResult res = f.index.IndexRecoveredRegion(
      0, nullptr, kRegionDataOffset, f.set().LiveEnd(0), false);
  CHECK(res.records == 2);
  f.index.FollowRegions(2);
  CHECK(ValueOf(f.index, 7) == "a");
  CHECK(ValueOf(f.index, 8) == "b");
  CHECK(absl::IsNotFound(f.index.Lookup(9).status()));
  // Published after open, in another region: the next read indexes it.
  const uint64_t at = f.Append(1, RecordType::kPut, 7, 3, "c");
  absl::StatusOr<RecordView> v = f.index.Lookup(7);
  REQUIRE(v.ok());
  CHECK(v->value == "c");
  CHECK(v->sequence == 3);
  CHECK(v->location.region == 1);
  CHECK(v->location.file_offset == f.set().Offset(1) + at);
  absl::StatusOr<uint64_t> end = f.index.IndexedEnd(1);
  REQUIRE(end.ok());
  CHECK(*end == at + RecordSize(1));
  CHECK(absl::IsInvalidArgument(f.index.IndexedEnd(2).status()));
}

TEST_CASE("StoreIndex keeps the latest write of an id, by sequence",
          "[store_index]") {
  IndexFixture f;
  f.index.FollowRegions(2);
  f.Append(1, RecordType::kPut, 5, 10, "newer");
  f.index.Refresh();
  // An older record found later (another writer's region) never wins.
  f.Append(0, RecordType::kPut, 5, 4, "older");
  CHECK(ValueOf(f.index, 5) == "newer");
  f.Append(0, RecordType::kDelete, 5, 11, "");
  CHECK(absl::IsNotFound(f.index.Lookup(5).status()));
  // Padding takes room and is never a record of the store.
  f.Append(0, RecordType::kPadding, 0, 12, std::string(8, '\0'));
  f.Append(0, RecordType::kPut, 6, 13, "six");
  std::vector<uint64_t> ids = {6, 5, 99};
  std::vector<absl::StatusOr<std::string_view>> values;
  f.index.MultiGet(ids, &values);
  REQUIRE(values.size() == 3);
  CHECK(*values[0] == "six");
  CHECK(absl::IsNotFound(values[1].status()));
  CHECK(absl::IsNotFound(values[2].status()));
}

TEST_CASE("StoreIndex::ForEachLive visits live records in sequence order",
          "[store_index]") {
  IndexFixture f;
  f.index.FollowRegions(2);
  f.Append(1, RecordType::kPut, 1, 5, "one");
  f.Append(0, RecordType::kPut, 2, 3, "two");
  f.Append(0, RecordType::kPut, 3, 4, "three");
  f.Append(0, RecordType::kDelete, 3, 6, "");
  std::vector<uint64_t> seen;
  REQUIRE(f.index
              .ForEachLive([&](const RecordView& v) {
                seen.push_back(v.id);
                return true;
              })
              .ok());
  CHECK(seen == std::vector<uint64_t>{2, 1});
  uint64_t live = 0, tombstones = 0;
  f.index.WithFreshIndex([&] {
    CHECK(f.index.ForEachLatestLocked([&](uint64_t, uint64_t loc) {
      (IsTombstone(f.index.ViewAt(loc).type) ? tombstones : live)++;
    }));
    CHECK(f.set()[0].records == 3);
    CHECK(f.set()[1].records == 1);
  });
  CHECK(live == 2);
  CHECK(tombstones == 1);
}

}  // namespace
}  // namespace recmap
