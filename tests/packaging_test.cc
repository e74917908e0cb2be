// Installs the built project into a scratch prefix (cmake --install) and
// builds a tiny outside project against it, once through the CMake package
// (find_package(recmap) + recmap::recmap) and once through pkg-config,
// with the compiler (and any -fsanitize flags) of this build.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace recmap {
namespace {

using testing::RunCommand;
using testing::TempDir;
using testing::WriteFile;

constexpr char kApp[] = R"(#include <cstdio>
#include "recmap/store.h"
#include "recmap/tailer.h"
int main(int argc, char** argv) {
  if (argc < 2) return 2;
  recmap::Options o;
  o.create_if_missing = true;
  o.region_size = 1 << 20;
  auto store = recmap::Store::Open(argv[1], o);
  if (!store.ok()) return 1;
  if (!(*store)->Put(7, "installed").ok()) return 1;
  auto v = (*store)->Get(7);
  if (!v.ok()) return 1;
  const uint64_t ids[] = {7, 8};
  auto many = (*store)->MultiGet(ids);
  if (many.size() != 2 || !many[0].ok() || !absl::IsNotFound(many[1].status()))
    return 1;
  const recmap::RecoveryReport& report = (*store)->last_recovery();
  if (!report.full_recovery) return 1;
  auto t = recmap::Tailer::Create(**store, {});
  if (!t.ok()) return 1;
  auto rec = (*t)->Next(std::chrono::seconds(0));
  if (!rec.ok() || !rec->has_value()) return 1;
  std::printf("app: %.*s (sequence %llu)\n", int(v->size()), v->data(),
              (unsigned long long)(*rec)->sequence);
  t->reset();
  if (!(*store)->Close().ok()) return 1;
  return 0;
}
)";

constexpr char kCMakeLists[] = R"(cmake_minimum_required(VERSION 3.25)
project(recmap_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(recmap 0.1 REQUIRED)
add_executable(app main.cc)
target_link_libraries(app recmap::recmap)
)";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  REQUIRE(v != nullptr);
  return v;
}

TEST_CASE("an outside project builds against the installed package") {
  TempDir dir;
  const std::string prefix = dir.File("prefix");
  std::string out;
  int rc = RunCommand("cmake --install '" + Env("RECMAP_BINARY_DIR") +
                          "' --prefix '" + prefix + "'",
                      &out, true);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(RunCommand("test -f '" + prefix + "/include/recmap/store.h'",
                   nullptr) == 0);
  CHECK(RunCommand("'" + prefix + "/bin/recmap' --help", nullptr) == 0);

  SECTION("through find_package") {
    const std::string src = dir.File("app");
    REQUIRE(RunCommand("mkdir -p '" + src + "'", nullptr) == 0);
    WriteFile(src + "/main.cc", kApp);
    WriteFile(src + "/CMakeLists.txt", kCMakeLists);
    rc = RunCommand("cmake -S '" + src + "' -B '" + src +
                        "/build' -G Ninja -DCMAKE_BUILD_TYPE=Release "
                        "-DCMAKE_CXX_COMPILER='" RECMAP_CONSUMER_CXX
                        "' -DCMAKE_CXX_FLAGS='" RECMAP_CONSUMER_FLAGS
                        "' -DCMAKE_PREFIX_PATH='" +
                        prefix + "' && cmake --build '" + src + "/build'",
                    &out, true);
    INFO(out);
    REQUIRE(rc == 0);
    rc = RunCommand("'" + src + "/build/app' '" + dir.File("a.rmap") + "'",
                    &out, true);
    INFO(out);
    CHECK(rc == 0);
    CHECK_THAT(out, Catch::Contains("app: installed (sequence 1)"));
  }
  SECTION("through pkg-config") {
    WriteFile(dir.File("main.cc"), kApp);
    const std::string pc = "PKG_CONFIG_PATH=\"$(dirname \"$(find '" + prefix +
                           "' -name recmap.pc)\")\" pkg-config";
    rc = RunCommand("'" RECMAP_CONSUMER_CXX "' " RECMAP_CONSUMER_FLAGS
                    " -O1 -o '" +
                        dir.File("app_pc") + "' '" + dir.File("main.cc") +
                        "' $(" + pc + " --cflags --libs recmap)",
                    &out, true);
    INFO(out);
    REQUIRE(rc == 0);
    rc = RunCommand("'" + dir.File("app_pc") + "' '" + dir.File("b.rmap") + "'",
                    &out, true);
    INFO(out);
    CHECK(rc == 0);
    CHECK_THAT(out, Catch::Contains("app: installed (sequence 1)"));
  }
}

}  // namespace
}  // namespace recmap
