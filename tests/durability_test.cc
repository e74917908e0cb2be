// Durability (store/durability.h): flushes, Sync's durable tails, and the
// poisoning of a handle after a failed flush.
#include "durability.h"

#include <catch2/catch.hpp>
#include <string>

#include "region_set_fixture.h"

namespace recmap {
namespace {

using testing::RegionSetFixture;

TEST_CASE("Durability flushes and writes durably", "[durability]") {
  RegionSetFixture f(1);
  REQUIRE(f.durability().FlushFile().ok());
  const std::string bytes = "durable";
  REQUIRE(f.durability()
              .WriteDurable(kFirstRegionOffset + kRegionDataOffset,
                            bytes.data(), bytes.size())
              .ok());
  CHECK(std::string(f.base() + kFirstRegionOffset + kRegionDataOffset,
                    bytes.size()) == bytes);
  CHECK(f.durability().Check().ok());
  CHECK(f.durability().first_error().ok());
}

TEST_CASE("Durability::Sync raises each region's durable tail",
          "[durability]") {
  RegionSetFixture f(2);
  f.LoadAll(2);
  REQUIRE(f.set().Format(0, /*fresh=*/true).ok());
  REQUIRE(f.set().Format(1, /*fresh=*/true).ok());
  const RegionRef& r0 = f.set()[0].ref;
  CHECK(r0.DurableTail() == 0);
  r0.committed_tail().store(kRegionDataOffset + 64);
  REQUIRE(f.durability().Sync(f.set()).ok());
  CHECK(r0.DurableTail() == kRegionDataOffset + 64);
  CHECK(f.set()[1].ref.DurableTail() == kRegionDataOffset);
}

TEST_CASE("A failed flush poisons the handle for good", "[durability]") {
  Durability d;
  const std::string path = "/nonexistent/store";
  d.Init(/*fd=*/-1, &path);  // fdatasync(-1) fails: EBADF
  const absl::Status first = d.FlushFile();
  REQUIRE_FALSE(first.ok());
  CHECK(d.first_error() == first);
  // Every later flush fails without trying, naming the first failure.
  const absl::Status again = d.FlushFile();
  CHECK(absl::IsFailedPrecondition(again));
  CHECK(again.message().find(first.message()) != std::string::npos);
  CHECK(absl::IsFailedPrecondition(d.WriteDurable(0, "x", 1)));
  CHECK(absl::IsFailedPrecondition(d.Check()));
  CHECK(d.first_error() == first);
}

}  // namespace
}  // namespace recmap
