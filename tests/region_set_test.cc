// RegionSet (store/region_set.h) on a file laid out by hand.
#include "region_set.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include "region_set_fixture.h"

namespace recmap {
namespace {

using testing::RegionSetFixture;

TEST_CASE("RegionSet loads unformatted regions as such", "[region_set]") {
  RegionSetFixture f(2);
  f.LoadAll(2);
  CHECK(f.set().known() == 2);
  CHECK_FALSE(f.set()[0].formatted);
  CHECK_FALSE(f.set()[0].damaged);
  CHECK(f.set().Offset(1) ==
        kFirstRegionOffset + RegionSetFixture::kRegionSize);
  RegionRef ref;
  uint64_t epoch = 0;
  CHECK_FALSE(f.set().ReadHeaderAt(0, &ref, &epoch));
  // Not allowed unformatted (a region in the middle): damage.
  CHECK(absl::IsDataLoss(f.set().LoadHeader(0, /*allow_unformatted=*/false)));
}

TEST_CASE("RegionSet formats a region that then validates", "[region_set]") {
  for (bool fresh : {true, false}) {
    RegionSetFixture f(1);
    f.LoadAll(1);
    REQUIRE(f.set().Format(0, fresh).ok());
    const RegionInfo& ri = f.set()[0];
    CHECK(ri.formatted);
    CHECK(ri.ref.committed_tail().load() == kRegionDataOffset);
    CHECK(ri.indexed_end.load() == kRegionDataOffset);
    RegionRef ref;
    uint64_t epoch = 0;
    REQUIRE(f.set().ReadHeaderAt(0, &ref, &epoch));
    CHECK(epoch != 0);
    CHECK(ref.seed == ri.ref.seed);
    CHECK(ref.base == f.base() + kFirstRegionOffset);
    CHECK(f.set().LiveEnd(0) == kRegionDataOffset);
    // Reloading the header reads the same region back.
    REQUIRE(f.set().ReloadHeader(0).ok());
    CHECK(f.set()[0].ref.seed == ref.seed);
  }
}

TEST_CASE("RegionSet scrubs stale bytes past a tail", "[region_set]") {
  RegionSetFixture f(1);
  f.LoadAll(1);
  REQUIRE(f.set().Format(0, /*fresh=*/true).ok());
  char* region = f.set()[0].ref.base;
  const uint64_t tail = kRegionDataOffset + 64;
  region[tail + 8] = 'x';
  region[kRegionDataOffset + kPageSize + 16] = 'y';
  region[tail - 8] = 'k';  // below the tail: kept
  REQUIRE(f.set().ScrubTail(0, tail).ok());
  for (uint64_t p = tail; p < RegionSetFixture::kRegionSize; ++p) {
    if (region[p] != 0) FAIL("non-zero byte at " << p);
  }
  CHECK(region[tail - 8] == 'k');
}

TEST_CASE("RegionSet follows growth through the shared count", "[region_set]") {
  RegionSetFixture f(1);
  f.LoadAll(1);
  REQUIRE(f.set().Format(0, /*fresh=*/true).ok());
  // Nothing published past what is known: nothing to load.
  REQUIRE(f.set().LoadNew().ok());
  CHECK(f.set().known() == 1);
  // Another process grows the file and publishes the count; the file size
  // bounds what is believed.
  f.set().shared_count().store(3);
  REQUIRE(f.set().LoadNew().ok());
  CHECK(f.set().known() == 1);
  REQUIRE(::ftruncate(f.fd(), kFirstRegionOffset +
                                  2 * RegionSetFixture::kRegionSize) == 0);
  REQUIRE(f.set().LoadNew().ok());
  CHECK(f.set().known() == 2);
  CHECK_FALSE(f.set()[1].formatted);
}

TEST_CASE("RegionSet grows by one region and publishes it", "[region_set]") {
  RegionSetFixture f(1, /*max=*/2);
  f.LoadAll(1);
  REQUIRE(::ftruncate(f.fd(), kFirstRegionOffset +
                                  2 * RegionSetFixture::kRegionSize) == 0);
  REQUIRE(f.set().LoadForGrowth(2).ok());
  REQUIRE(f.set().Format(1, /*fresh=*/true).ok());
  CHECK(f.set().known() == 1);  // not yet published
  f.set().PublishCount(2);
  CHECK(f.set().known() == 2);
  CHECK(f.set().shared_count().load() == 2);
  CHECK(f.set()[1].formatted);
  // Past the room reserved at open.
  CHECK(absl::IsResourceExhausted(f.set().LoadForGrowth(3)));
}

}  // namespace
}  // namespace recmap
