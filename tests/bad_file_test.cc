// Files that are not (intact) recmap stores: each gives a specific status
// naming the problem and the path, never a crash or an out-of-bounds read.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "coding.h"
#include "format.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::ForkChild;
using testing::OpenOrDie;
using testing::ReadFile;
using testing::SmallOptions;
using testing::TempDir;
using testing::WaitChild;
using testing::WriteFile;

absl::Status OpenStatus(const std::string& path, bool read_only = false) {
  Options o;
  o.read_only = read_only;
  return Store::Open(path, o).status();
}

void ExpectError(const std::string& path, absl::StatusCode code,
                 const std::string& needle) {
  for (bool ro : {false, true}) {
    absl::Status s = OpenStatus(path, ro);
    INFO("read_only=" << ro << " status=" << s.ToString());
    CHECK(s.code() == code);
    CHECK_THAT(std::string(s.message()), Catch::Contains(needle));
    CHECK_THAT(std::string(s.message()), Catch::Contains(path));
  }
}

std::string ValidStore(const TempDir& dir) {
  const std::string path = dir.File("valid.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  REQUIRE(s->Put(1, "hello").ok());
  return path;
}

TEST_CASE("no such file", "[badfile]") {
  TempDir dir;
  absl::Status s = OpenStatus(dir.File("missing.rmap"));
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK_THAT(std::string(s.message()), Catch::Contains("missing.rmap"));
}

TEST_CASE("an existing file with error_if_exists", "[badfile]") {
  TempDir dir;
  const std::string path = ValidStore(dir);
  Options o = SmallOptions();
  o.error_if_exists = true;
  absl::Status s = Store::Open(path, o).status();
  CHECK(s.code() == absl::StatusCode::kAlreadyExists);
  CHECK_THAT(std::string(s.message()), Catch::Contains("already exists"));
}

TEST_CASE("an empty file", "[badfile]") {
  TempDir dir;
  const std::string path = dir.File("empty.rmap");
  WriteFile(path, "");
  ExpectError(path, absl::StatusCode::kDataLoss, "empty file");
  CHECK(ReadFile(path).empty());  // not "repaired" into a store
}

TEST_CASE("a truncated header", "[badfile]") {
  TempDir dir;
  const std::string full = ReadFile(ValidStore(dir));
  for (size_t n : {size_t{1}, size_t{8}, size_t{40}, size_t{71}}) {
    const std::string path = dir.File("trunc" + std::to_string(n));
    WriteFile(path, full.substr(0, n));
    ExpectError(path, absl::StatusCode::kDataLoss, "truncated");
  }
  // A whole header but not the shared page.
  const std::string path = dir.File("trunc4096");
  WriteFile(path, full.substr(0, 4096));
  ExpectError(path, absl::StatusCode::kDataLoss, "truncated file");
}

TEST_CASE("a wrong magic", "[badfile]") {
  TempDir dir;
  std::string bytes = ReadFile(ValidStore(dir));
  bytes[2] = 'X';
  const std::string path = dir.File("magic.rmap");
  WriteFile(path, bytes);
  ExpectError(path, absl::StatusCode::kDataLoss, "wrong magic");
}

TEST_CASE("a newer format version", "[badfile]") {
  TempDir dir;
  std::string bytes = ReadFile(ValidStore(dir));
  EncodeFixed32(bytes.data() + 8, kFormatVersion + 1);
  const std::string path = dir.File("newer.rmap");
  WriteFile(path, bytes);
  ExpectError(path, absl::StatusCode::kFailedPrecondition,
              "format version " + std::to_string(kFormatVersion + 1));
}

TEST_CASE("a damaged header checksum", "[badfile]") {
  TempDir dir;
  std::string bytes = ReadFile(ValidStore(dir));
  bytes[20] ^= 1;  // inside the uuid
  const std::string path = dir.File("cksum.rmap");
  WriteFile(path, bytes);
  ExpectError(path, absl::StatusCode::kDataLoss, "checksum mismatch");
}

TEST_CASE("files of random bytes", "[badfile]") {
  TempDir dir;
  std::mt19937_64 rng(7);
  for (size_t size : {size_t{3}, size_t{100}, size_t{4096}, size_t{8192},
                      size_t{65536 + 8192}, size_t{200000}}) {
    std::string bytes(size, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    const std::string path = dir.File("random" + std::to_string(size));
    WriteFile(path, bytes);
    ExpectError(path, absl::StatusCode::kDataLoss, "");
  }
}

TEST_CASE("random bytes behind a valid header are never returned",
          "[badfile]") {
  TempDir dir;
  const std::string good = ValidStore(dir);
  std::string bytes = ReadFile(good);
  REQUIRE(bytes.size() == 8192 + 65536);
  std::mt19937_64 rng(11);
  // Garbage over region 0's data area (header and state page kept).
  for (size_t i = 8192 + 8192; i < bytes.size(); ++i) {
    bytes[i] = static_cast<char>(rng());
  }
  const std::string path = dir.File("garbage.rmap");
  WriteFile(path, bytes);
  Options o;
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
  // The record was never synced, so losing it to garbage is a torn tail:
  // the store opens, empty, and returns nothing from the garbage.
  REQUIRE(s.ok());
  CHECK((*s)->Get(1).status().code() == absl::StatusCode::kNotFound);
  CHECK((*s)->Stats().records == 0);
}

TEST_CASE("a directory", "[badfile]") {
  TempDir dir;
  for (bool ro : {false, true}) {
    absl::Status s = OpenStatus(dir.path(), ro);
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(s.message()), Catch::Contains("is a directory"));
  }
}

TEST_CASE("a file without read permission", "[badfile]") {
  TempDir dir;
  const std::string path = ValidStore(dir);
  REQUIRE(::chmod(path.c_str(), 0) == 0);
  REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
  // Root ignores file modes: check as an unprivileged user in a child.
  pid_t kid = ForkChild([&] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      return 10;
    }
    for (bool ro : {false, true}) {
      absl::Status s = OpenStatus(path, ro);
      if (s.code() != absl::StatusCode::kPermissionDenied) return 11;
      if (std::string(s.message()).find(path) == std::string::npos) return 12;
    }
    return 0;
  });
  CHECK(WaitChild(kid) == 0);
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
}

TEST_CASE("a region header that belongs elsewhere", "[badfile]") {
  TempDir dir;
  const std::string a = ValidStore(dir);
  const std::string b = dir.File("b.rmap");
  {
    auto s = OpenOrDie(b, SmallOptions());
    REQUIRE(s->Put(1, "other").ok());
    REQUIRE(s->Put(2, std::string(50000, 'z')).ok());
  }
  // Region 0 of a pasted over region 0 of b: the uuid check rejects it,
  // and the records behind it keep it from passing as a trailing region
  // whose header never reached the disk.
  std::string bytes_a = ReadFile(b);
  std::string region0_of_a = ReadFile(a).substr(8192, 65536);
  bytes_a.replace(8192, 65536, region0_of_a);
  const std::string path = dir.File("mixed.rmap");
  WriteFile(path, bytes_a);
  Options o;
  absl::Status s = Store::Open(path, o).status();
  CHECK(s.code() == absl::StatusCode::kDataLoss);
  CHECK_THAT(std::string(s.message()), Catch::Contains("region 0"));
  CHECK_THAT(std::string(s.message()),
             Catch::Contains("another region or file"));
}

}  // namespace
}  // namespace recmap
