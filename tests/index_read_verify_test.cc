// Issue 11, item 1, from the outside: a record located through the
// persisted index (<store>.idx) must pass its checksum before any read path
// returns it. One writer puts 100,500 records into 1 MiB regions and closes
// (the index is written); a byte of a record in region 3 is flipped in the
// file; every read -- Store::Get / GetRecord / MultiGet / ForEachLive, the
// `recmap get` tool -- must report DataLoss (exit 3) naming the offset, in
// read-only and writable opens alike, instead of returning altered bytes.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::ToolPath;
using testing::WriteFile;

constexpr uint64_t kRecords = 100500;
constexpr uint64_t kRegionSize = uint64_t{1} << 20;

std::string ValueFor(uint64_t id) {
  std::string v = absl::StrCat("value-", id, "-");
  v.resize(100, static_cast<char>('a' + id % 26));
  return v;
}

bool FileExists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Writes the store once (about 14 MB); each test case copies it.
const std::string& PristineStore() {
  static TempDir* dir = new TempDir();
  static std::string path = [] {
    std::string p = dir->File("pristine.rmap");
    Options o;
    o.create_if_missing = true;
    o.region_size = kRegionSize;
    // The whole log covered at the close, whatever the background writer
    // had done by then.
    o.persist_index_in_background = false;
    auto s = OpenOrDie(p, o);
    for (uint64_t id = 1; id <= kRecords; ++id) {
      absl::Status st = s->Put(id, ValueFor(id));
      if (!st.ok()) FAIL(st.ToString());
    }
    return p;
  }();
  return path;
}

struct Victim {
  uint64_t id = 0;
  uint64_t sequence = 0;
  uint64_t offset = 0;  // file offset of the record header
};

// A record in region 3, found through the public API.
Victim FindVictim(const std::string& path) {
  Options ro;
  ro.read_only = true;
  auto s = OpenOrDie(path, ro);
  Victim v;
  absl::Status st = s->ForEachInRegion(3, [&](const RecordView& r) {
    if (r.type != RecordType::kPut) return true;
    v = {r.id, r.sequence, r.location.file_offset};
    return false;
  });
  REQUIRE(st.ok());
  REQUIRE(v.id != 0);
  return v;
}

void XorByte(const std::string& path, uint64_t offset, uint8_t mask) {
  std::string data = ReadFile(path);
  REQUIRE(offset < data.size());
  data[offset] = static_cast<char>(data[offset] ^ mask);
  WriteFile(path, data);
}

void CheckEveryReadFails(const std::string& path, const Victim& v,
                         bool read_only) {
  Options o;
  o.read_only = read_only;
  auto s = OpenOrDie(path, o);
  const std::string where = absl::StrCat(v.offset);

  absl::StatusOr<std::string_view> g = s->Get(v.id);
  CHECK(absl::IsDataLoss(g.status()));
  CHECK_THAT(std::string(g.status().message()), Catch::Contains(where));

  absl::StatusOr<RecordView> r = s->GetRecord(v.id);
  CHECK(absl::IsDataLoss(r.status()));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains(where));

  std::vector<uint64_t> ids = {v.id - 1, v.id, v.id + 1};
  std::vector<absl::StatusOr<std::string_view>> values = s->MultiGet(ids);
  REQUIRE(values.size() == 3);
  CHECK(absl::IsDataLoss(values[1].status()));
  REQUIRE(values[0].ok());
  CHECK(*values[0] == ValueFor(v.id - 1));
  REQUIRE(values[2].ok());
  CHECK(*values[2] == ValueFor(v.id + 1));

  // The neighbours are intact and still served.
  absl::StatusOr<std::string_view> n = s->Get(v.id + 1);
  REQUIRE(n.ok());
  CHECK(*n == ValueFor(v.id + 1));

  // A scan returns the record only if it verifies: never the altered bytes.
  bool returned_victim = false;
  absl::Status live = s->ForEachLive([&](const RecordView& rv) {
    if (rv.id == v.id) returned_victim = true;
    return true;
  });
  CHECK(absl::IsDataLoss(live));
  CHECK_FALSE(returned_victim);
}

void CheckToolGetFails(const std::string& path, const Victim& v) {
  std::string out;
  int rc = RunCommand(
      absl::StrCat(ToolPath(), " get ", path, " ", v.id, " 2>&1"), &out);
  CHECK(rc == 3);
  CHECK_THAT(out, Catch::Contains(absl::StrCat(v.offset)));
  CHECK_THAT(out, !Catch::Contains(ValueFor(v.id).substr(0, 20)));
  // Its neighbour is fine.
  rc = RunCommand(
      absl::StrCat(ToolPath(), " get ", path, " ", v.id + 1, " 2>/dev/null"),
      &out);
  CHECK(rc == 0);
  CHECK_THAT(out, Catch::Contains(ValueFor(v.id + 1)));
}

void Copy(const std::string& from, const std::string& to) {
  WriteFile(to, ReadFile(from));
}

void RunCase(uint64_t header_field_offset, uint8_t mask) {
  const std::string& pristine = PristineStore();
  REQUIRE(FileExists(pristine + ".idx"));
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Copy(pristine, path);
  Copy(pristine + ".idx", path + ".idx");
  const Victim v = FindVictim(path);
  XorByte(path, v.offset + header_field_offset, mask);
  // Read-only first (nothing may change the files), then writable.
  CheckEveryReadFails(path, v, /*read_only=*/true);
  CheckToolGetFails(path, v);
  CheckEveryReadFails(path, v, /*read_only=*/false);
  CheckToolGetFails(path, v);
  // Without the index file the damage is found by the scan at open.
  ::unlink((path + ".idx").c_str());
  Options ro;
  ro.read_only = true;
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, ro);
  if (s.ok()) {
    absl::StatusOr<std::string_view> g = (*s)->Get(v.id);
    CHECK_FALSE(g.ok());
  } else {
    CHECK(absl::IsDataLoss(s.status()));
  }
}

TEST_CASE("a payload byte flipped behind the persisted index is DataLoss",
          "[index][corruption]") {
  RunCase(/*payload byte*/ 52, 0x5A);
}

TEST_CASE("a sequence byte flipped behind the persisted index is DataLoss",
          "[index][corruption]") {
  // The sequence field (docs/FORMAT.md: record header bytes 24..31).
  RunCase(24 + 5, 0x59);
}

TEST_CASE("an id byte flipped behind the persisted index is DataLoss",
          "[index][corruption]") {
  RunCase(16, 0x01);
}

TEST_CASE("reads of an intact store through its index are unchanged",
          "[index]") {
  const std::string& pristine = PristineStore();
  Options ro;
  ro.read_only = true;
  auto s = OpenOrDie(pristine, ro);
  for (uint64_t id = 1; id <= kRecords; id += 997) {
    absl::StatusOr<std::string_view> g = s->Get(id);
    REQUIRE(g.ok());
    CHECK(*g == ValueFor(id));
  }
  uint64_t n = 0;
  REQUIRE(s->ForEachLive([&](const RecordView&) { return ++n, true; }).ok());
  CHECK(n == kRecords);
}

}  // namespace
}  // namespace recmap
