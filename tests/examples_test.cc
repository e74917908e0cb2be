// Runs each example program (examples/*.cc) and checks what it prints.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace recmap {
namespace {

std::string RunExample(const std::string& name, const std::string& args,
                       int* rc) {
  const char* bin = std::getenv("RECMAP_BINARY_DIR");
  REQUIRE(bin != nullptr);
  std::string out;
  *rc = testing::RunCommand(std::string(bin) + "/examples/" + name + " " + args,
                            &out,
                            /*merge_stderr=*/true);
  INFO(name << " printed:\n" << out);
  return out;
}

using Catch::Contains;

TEST_CASE("example producer_consumer delivers every record in order") {
  int rc = -1;
  std::string out = RunExample("producer_consumer", "--records 1000", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Contains("producer: appended 1000 records"));
  CHECK_THAT(out, Contains("consumer: received 1000 records in order"));
  CHECK_THAT(out, Contains("publish->delivery latency over 1000 records"));
  CHECK_THAT(out, Contains("\nOK\n"));
}

TEST_CASE("example analytics receives every reading of every collector") {
  int rc = -1;
  std::string out =
      RunExample("analytics", "--collectors 3 --readings 200", &rc);
  INFO(out);
  CHECK(rc == 0);
  for (int m = 0; m < 3; ++m) {
    CHECK_THAT(out, Contains("analyzer: metric " + std::to_string(m) +
                             ": 200 readings, in order"));
  }
  CHECK_THAT(out, Contains("mean"));
  CHECK_THAT(out, Contains("\nOK\n"));
}

TEST_CASE("example parallel_writers gives each process its own region") {
  int rc = -1;
  std::string out = RunExample("parallel_writers", "", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Contains("id 309: 'Process 3 - Record 9'"));
  CHECK_THAT(out, Contains("read back 40 of 40 records from 4 distinct writer "
                           "regions"));
  CHECK_THAT(out, Contains("\nOK\n"));
}

TEST_CASE("example shared_counter counts 4000 increments exactly") {
  int rc = -1;
  std::string out = RunExample("shared_counter", "", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Contains("unsafe shared int64:"));
  CHECK_THAT(out, Contains("recmap: 4000 of 4000 increments recorded"));
  CHECK_THAT(out, Contains("\nOK\n"));
}

TEST_CASE("example large_blob shares one copy between four readers") {
  int rc = -1;
  std::string out = RunExample("large_blob", "", &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK_THAT(out, Contains("wrote one 64 MiB record"));
  for (int k = 0; k < 4; ++k) {
    CHECK_THAT(out, Contains("reader " + std::to_string(k) +
                             ": blob intact, zero-copy yes"));
  }
  CHECK_THAT(out, Contains("memory: one shared copy"));
  CHECK_THAT(out, Contains("\nOK\n"));
}

}  // namespace
}  // namespace recmap
