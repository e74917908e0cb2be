// `make demo` runs examples/recmap_demo: this runs it with a smaller load
// and checks what it promises to show.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <regex>
#include <string>

#include "test_util.h"

namespace recmap {
namespace {

TEST_CASE("the demo recovers every published record", "[demo]") {
  const std::string bin = std::getenv("RECMAP_BINARY_DIR");
  std::string out;
  int rc =
      testing::RunCommand(bin + "/examples/recmap_demo --records 3000 --tool " +
                              testing::ToolPath(),
                          &out, /*merge_stderr=*/true);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains("writer 1: killed by signal 9"));
  // One table row per writer: published == recovered, nothing missing.
  std::regex row(R"(\n   ([0-3]) +([0-9]+) +([0-9]+) +([0-9]+))");
  int rows = 0;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), row);
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    ++rows;
    const long published = std::stol(m[2]), recovered = std::stol(m[3]);
    CHECK(m[4] == "0");
    if (m[1] == "1") {
      CHECK(published > 0);
      CHECK(recovered >= published);
      CHECK(recovered <= published + 1);
    } else {
      CHECK(published == 3000);
      CHECK(recovered == 3000);
    }
  }
  CHECK(rows == 4);
  CHECK_THAT(out, Catch::Contains("corrupt records returned: 0"));
  CHECK_THAT(out, Catch::Contains("== recmap inspect"));
  CHECK_THAT(out, Catch::Contains("uuid:"));
  CHECK_THAT(out, Catch::Contains("== recmap dump"));
  // Region 0 belongs to whichever writer claimed it first.
  CHECK(std::regex_search(out,
                          std::regex(R"(put +[0-9]+  writer [0-3] record 0)")));
  CHECK_THAT(out,
             Catch::Contains("== OK: every published record was recovered"));
}

}  // namespace
}  // namespace recmap
