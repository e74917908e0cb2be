#include "location.h"

#include <catch2/catch.hpp>

namespace recmap {
namespace {

TEST_CASE("Location packs region and offset/8 into one word", "[location]") {
  // The layout is the index file's: region in the top 24 bits, offset/8
  // below.
  CHECK(Location::Pack(0, kRegionDataOffset) == kRegionDataOffset / 8);
  CHECK(Location::Pack(1, kRegionDataOffset) ==
        (uint64_t{1} << 40 | kRegionDataOffset / 8));
  CHECK(Location::Pack(0xFFFFFF, 8) == (uint64_t{0xFFFFFF} << 40 | 1));
  CHECK((Location{3, 4096 + 24}.packed()) == Location::Pack(3, 4120));
}

TEST_CASE("Location round-trips every region and aligned offset edge",
          "[location]") {
  for (uint32_t region : {0u, 1u, 2u, 1000u, 0xFFFFFFu}) {
    for (uint64_t offset : {kRegionDataOffset, kRegionDataOffset + 8,
                            kMaxRegionSize - 8, (uint64_t{1} << 43) - 8}) {
      const uint64_t packed = Location::Pack(region, offset);
      CHECK(packed != 0);
      const Location l = Location::Unpack(packed);
      CHECK(l.region == region);
      CHECK(l.offset == offset);
      CHECK(Location::RegionOf(packed) == region);
    }
  }
}

TEST_CASE("Location resolves to a file offset and a mapped address",
          "[location]") {
  const Location l{2, kRegionDataOffset + 64};
  CHECK(l.FileOffset(uint64_t{1} << 20) ==
        kFirstRegionOffset + 2 * (uint64_t{1} << 20) + kRegionDataOffset + 64);
  char region[kRegionDataOffset + 128] = {};
  CHECK(l.In(region) == region + kRegionDataOffset + 64);
}

TEST_CASE("Location 0 is no record", "[location]") {
  const Location l = Location::Unpack(0);
  CHECK(l.region == 0);
  CHECK(l.offset == 0);
  CHECK(l.offset < kRegionDataOffset);
}

}  // namespace
}  // namespace recmap
