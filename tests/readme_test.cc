// The README's usage example is examples/readme_example.cc verbatim, and it
// runs and prints what a reader would expect.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace recmap {
namespace {

std::string SourceDir() {
  const char* d = std::getenv("RECMAP_SOURCE_DIR");
  REQUIRE(d != nullptr);
  return d;
}

TEST_CASE("README quotes the example program verbatim", "[readme]") {
  const std::string readme = testing::ReadFile(SourceDir() + "/README.md");
  const std::string example =
      testing::ReadFile(SourceDir() + "/examples/readme_example.cc");
  REQUIRE(!example.empty());
  CHECK(readme.find("```cpp\n" + example + "```") != std::string::npos);
  CHECK(readme.find("make demo") != std::string::npos);
  CHECK(readme.find("make test") != std::string::npos);
}

TEST_CASE("the README example runs", "[readme]") {
  testing::TempDir dir;
  const char* bin = std::getenv("RECMAP_BINARY_DIR");
  REQUIRE(bin != nullptr);
  std::string out;
  int rc = testing::RunCommand(
      std::string(bin) + "/examples/readme_example " + dir.File("ex.rmap"),
      &out);
  CHECK(rc == 0);
  CHECK(out ==
        "42 -> hello, recmap\n"
        "after delete: NOT_FOUND: id 42 was deleted\n"
        "id 2 seq 2: an appended record\n");
}

}  // namespace
}  // namespace recmap
