// Store::Refresh reports what a handle could not pick up of other handles'
// writes; the reads that refresh by themselves keep serving what is mapped.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::SmallOptions;
using testing::TempDir;

TEST_CASE("Refresh reports a file grown past the handle's max_file_size",
          "[refresh]") {
  TempDir dir;
  const std::string path = dir.File("r.rmap");
  auto writer = OpenOrDie(path, SmallOptions());
  REQUIRE(writer->Put(1, "first").ok());
  const uint64_t size = writer->Stats().file_size;
  Options ro = SmallOptions();
  ro.read_only = true;
  ro.create_if_missing = false;
  ro.max_file_size = size;  // no room to map another region
  auto reader = OpenOrDie(path, ro);
  REQUIRE(reader->Refresh().ok());
  // Past the first region: the file grows.
  const std::string big(40 << 10, 'b');
  for (uint64_t id = 2; id <= 4; ++id) REQUIRE(writer->Put(id, big).ok());
  REQUIRE(writer->Stats().regions > 1);

  const absl::Status s = reader->Refresh();
  CHECK(absl::IsResourceExhausted(s));
  CHECK_THAT(std::string(s.message()), Catch::Contains("max_file_size"));
  // Every call says so; reads answer from what is mapped.
  CHECK(absl::IsResourceExhausted(reader->Refresh()));
  CHECK(reader->Get(1).ok());
  CHECK(reader->Stats().regions == 1);
}

TEST_CASE("Refresh reports damage below a committed tail, every time",
          "[refresh]") {
  TempDir dir;
  const std::string path = dir.File("r.rmap");
  auto writer = OpenOrDie(path, SmallOptions());
  REQUIRE(writer->Put(1, "before").ok());
  Options ro = SmallOptions();
  ro.read_only = true;
  ro.create_if_missing = false;
  auto reader = OpenOrDie(path, ro);
  REQUIRE(reader->Get(1).ok());
  // Published after the reader indexed the log, then damaged in the file.
  REQUIRE(writer->Put(2, std::string(64, 'x')).ok());
  REQUIRE(writer->Put(3, "after").ok());
  absl::StatusOr<RecordView> two = writer->GetRecord(2);
  REQUIRE(two.ok());
  const int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  const off_t at = static_cast<off_t>(two->location.file_offset + 48);
  char c = 0;
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  c = static_cast<char>(c ^ 0x01);
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);

  const absl::Status s = reader->Refresh();
  CHECK(absl::IsDataLoss(s));
  CHECK_THAT(std::string(s.message()),
             Catch::Contains("region 0: checksum mismatch at file offset " +
                             std::to_string(two->location.file_offset)));
  CHECK_THAT(std::string(s.message()),
             Catch::Contains("below the committed tail"));
  // The region is no longer indexed past the damage; the next call still
  // reports it, and the records before it are served.
  CHECK(reader->Refresh() == s);
  CHECK(reader->Get(1).ok());
  CHECK(absl::IsNotFound(reader->Get(3).status()));
}

}  // namespace
}  // namespace recmap
