// Recovery modes (tolerate, absolute, salvage), stale bytes (a region copied
// from another store, a reformatted region), and the verify / recover
// library functions and their `recmap verify` / `recmap recover` commands.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "crash/crash_util.h"
#include "format.h"
#include "recmap/store.h"
#include "recover.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"
#include "verify.h"

namespace recmap::testing {
namespace {

constexpr size_t kMax = 900;

struct Layout {
  std::vector<uint64_t> offsets;  // file offsets of the non-padding records
  std::vector<uint64_t> ids;
};

// 12 records in region 0 of a 64 KiB-region store; `sync_after`: Sync()
// after that many records (0: never).
Layout MakeStore(const std::string& path, int sync_after) {
  Layout l;
  std::unique_ptr<Store> s = OpenOrDie(path, SmallOptions());
  for (uint64_t id = 1; id <= 12; ++id) {
    REQUIRE(s->Put(id, PayloadFor(id, kMax)).ok());
    if (static_cast<int>(id) == sync_after) REQUIRE(s->Sync().ok());
  }
  REQUIRE(s->ForEachInRegion(0, [&](const RecordView& v) {
             if (v.type == RecordType::kPadding) return true;
             l.offsets.push_back(v.location.file_offset);
             l.ids.push_back(v.id);
             return true;
           }).ok());
  REQUIRE(l.ids.size() == 12);
  return l;
}

void Corrupt(const std::string& path, uint64_t offset) {
  std::string b = ReadFile(path);
  REQUIRE(offset < b.size());
  b[offset] ^= 0x40;
  WriteFile(path, b);
}

absl::StatusOr<std::vector<uint64_t>> Ids(const std::string& path,
                                          RecoveryMode mode,
                                          bool read_only = false) {
  Options o;
  o.recovery_mode = mode;
  o.read_only = read_only;
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
  if (!s.ok()) return s.status();
  std::vector<uint64_t> ids;
  absl::Status st = (*s)->ForEachInRegion(0, [&](const RecordView& v) {
    if (v.type != RecordType::kPadding) ids.push_back(v.id);
    return true;
  });
  if (!st.ok()) return st;
  return ids;
}

std::vector<uint64_t> Range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

TEST_CASE("recovery modes on a damaged record in the middle of the log",
          "[crash][modes]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const Layout l = MakeStore(path, 0);
  const std::string clean = ReadFile(path);
  // Damage record 7's payload (ids are 1-based: id 7 is index 6).
  Corrupt(path, l.offsets[6] + kRecordHeaderSize + 1);
  const std::string damaged = ReadFile(path);

  SECTION("absolute: DataLoss naming the offset, never opened for writing") {
    absl::StatusOr<std::vector<uint64_t>> r =
        Ids(path, RecoveryMode::kAbsoluteConsistency);
    REQUIRE(r.status().code() == absl::StatusCode::kDataLoss);
    CHECK(
        std::string(r.status().message()).find(std::to_string(l.offsets[6])) !=
        std::string::npos);
    CHECK(ReadFile(path) == damaged);  // not a byte written
    // Read-only absolute opens refuse too.
    CHECK(Ids(path, RecoveryMode::kAbsoluteConsistency, true).status().code() ==
          absl::StatusCode::kDataLoss);
  }
  SECTION("salvage: every valid record, the damaged one skipped") {
    absl::StatusOr<std::vector<uint64_t>> r = Ids(path, RecoveryMode::kSalvage);
    REQUIRE(r.ok());
    std::vector<uint64_t> want = Range(1, 6);
    for (uint64_t id : Range(8, 12)) want.push_back(id);
    CHECK(*r == want);
  }
  SECTION("tolerate: cut at the damage; later salvage brings nothing back") {
    // No Sync() happened: the damage is treated as a torn tail.
    absl::StatusOr<std::vector<uint64_t>> r =
        Ids(path, RecoveryMode::kTolerateTornTail);
    REQUIRE(r.ok());
    CHECK(*r == Range(1, 6));
    absl::StatusOr<std::vector<uint64_t>> s = Ids(path, RecoveryMode::kSalvage);
    REQUIRE(s.ok());
    CHECK(*s == Range(1, 6));
    // And appends continue after the cut.
    {
      std::unique_ptr<Store> st = OpenOrDie(path, SmallOptions());
      REQUIRE(st->Put(100, "after").ok());
    }
    absl::StatusOr<std::vector<uint64_t>> t =
        Ids(path, RecoveryMode::kAbsoluteConsistency);
    REQUIRE(t.ok());
    std::vector<uint64_t> want = Range(1, 6);
    want.push_back(100);
    CHECK(*t == want);
  }
  (void)clean;
}

TEST_CASE("tolerate refuses damage below the durable tail", "[crash][modes]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const Layout l = MakeStore(path, 10);  // records 1..10 synced
  SECTION("a flipped byte") { Corrupt(path, l.offsets[4] + kRecordHeaderSize); }
  SECTION("a page of zeros (a lost write-back)") {
    std::string b = ReadFile(path);
    const uint64_t page = l.offsets[4] / kPageSize * kPageSize;
    std::memset(b.data() + page, 0, kPageSize);
    WriteFile(path, b);
  }
  absl::StatusOr<std::vector<uint64_t>> r =
      Ids(path, RecoveryMode::kTolerateTornTail);
  CHECK(r.status().code() == absl::StatusCode::kDataLoss);
  CHECK(std::string(r.status().message()).find("durable") != std::string::npos);
  // Salvage still opens and keeps what validates.
  absl::StatusOr<std::vector<uint64_t>> s = Ids(path, RecoveryMode::kSalvage);
  REQUIRE(s.ok());
  CHECK(s->size() < 12);
  CHECK(!s->empty());
}

TEST_CASE("stale bytes: a region copied from another store never validates",
          "[crash][stale]") {
  TempDir dir;
  const std::string a = dir.File("a.rmap"), b = dir.File("b.rmap");
  MakeStore(a, 0);
  {
    std::unique_ptr<Store> s = OpenOrDie(b, SmallOptions());
    REQUIRE(s->Put(500, "b's own").ok());
  }
  std::string ab = ReadFile(a), bb = ReadFile(b);
  REQUIRE(ab.size() == bb.size());
  const uint64_t rs = 64 << 10;
  SECTION("the whole region, header included") {
    bb.replace(kFirstRegionOffset, rs, ab, kFirstRegionOffset, rs);
    WriteFile(b, bb);
    // The header names a's uuid: damage, in every mode; salvage drops it.
    CHECK(Ids(b, RecoveryMode::kTolerateTornTail).status().code() ==
          absl::StatusCode::kDataLoss);
    absl::StatusOr<std::vector<uint64_t>> s = Ids(b, RecoveryMode::kSalvage);
    REQUIRE(s.ok());
    CHECK(s->empty());
  }
  SECTION("the log only, b's header and state kept") {
    const uint64_t data = kFirstRegionOffset + kRegionDataOffset;
    bb.replace(data, rs - kRegionDataOffset, ab, data, rs - kRegionDataOffset);
    WriteFile(b, bb);
    for (RecoveryMode m :
         {RecoveryMode::kTolerateTornTail, RecoveryMode::kSalvage}) {
      absl::StatusOr<std::vector<uint64_t>> s = Ids(b, m);
      REQUIRE(s.ok());
      CHECK(s->empty());  // a's records carry a's seed: none validates
    }
  }
}

TEST_CASE("stale bytes: a reformatted region's old records never validate",
          "[crash][stale]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  MakeStore(path, 0);
  std::string before = ReadFile(path);
  {
    // Reformat region 0 in place (what growth does to a reused region):
    // new epoch, old log bytes left where they were.
    std::unique_ptr<Store> s = OpenOrDie(path, SmallOptions());
    std::string keep(StorePeer::Rep(*s).region(0).ref.base + kRegionDataOffset,
                     (64 << 10) - kRegionDataOffset);
    REQUIRE(StorePeer::Rep(*s).FormatRegion(0, /*fresh=*/true).ok());
    std::memcpy(StorePeer::Rep(*s).region(0).ref.base + kRegionDataOffset,
                keep.data(), keep.size());
  }
  for (RecoveryMode m :
       {RecoveryMode::kTolerateTornTail, RecoveryMode::kSalvage}) {
    absl::StatusOr<std::vector<uint64_t>> s = Ids(path, m);
    REQUIRE(s.ok());
    CHECK(s->empty());
  }
}

TEST_CASE("verify and recover: library and CLI", "[crash][verify]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const Layout l = MakeStore(path, 0);
  const std::string tool = ToolPath();

  absl::StatusOr<VerifyReport> v = VerifyStore(path);
  REQUIRE(v.ok());
  CHECK(v->clean());
  CHECK(v->puts == 12);
  CHECK(v->indexed_ids == 12);
  std::string out;
  CHECK(RunCommand(tool + " verify " + path, &out) == 0);
  CHECK(out.find("clean") != std::string::npos);

  // A torn tail (a writer killed mid-record) is not damage.
  {
    std::string b = ReadFile(path);
    const uint64_t end = l.offsets.back() + RecordSize(PayloadLength(12, kMax));
    std::memset(b.data() + end, 0x5A, 20);
    WriteFile(path, b);
  }
  v = VerifyStore(path);
  REQUIRE(v.ok());
  CHECK(v->clean());
  CHECK(v->torn_tails == 1);

  // Damage in the middle: verify exits 3 and names the offset.
  const std::string before = ReadFile(path);
  Corrupt(path, l.offsets[3] + kRecordHeaderSize);
  const std::string damaged = ReadFile(path);
  v = VerifyStore(path);
  REQUIRE(v.ok());
  REQUIRE(!v->clean());
  CHECK(v->issues[0].file_offset == l.offsets[3]);
  CHECK(RunCommand(tool + " verify " + path, &out) == 3);
  CHECK(out.find(std::to_string(l.offsets[3])) != std::string::npos);
  CHECK(ReadFile(path) == damaged);  // verify never writes

  // recover --dry-run reports, by region and offset, and writes nothing.
  RecoverOptions ro;
  ro.dry_run = true;
  absl::StatusOr<RecoverResult> r = RecoverStore(path, ro);
  REQUIRE(r.ok());
  REQUIRE(r->drops.size() == 1);
  CHECK(r->drops[0].region == 0);
  CHECK(r->drops[0].file_offset == l.offsets[3]);
  CHECK(r->records_kept == 3);
  CHECK(RunCommand(tool + " recover " + path + " --dry-run", &out) == 0);
  CHECK(out.find("would drop") != std::string::npos);
  CHECK(out.find(std::to_string(l.offsets[3])) != std::string::npos);
  CHECK(ReadFile(path) == damaged);
  CHECK(RunCommand(tool + " recover " + path + " --mode salvage --dry-run",
                   &out) == 0);
  CHECK(out.find("salvage") != std::string::npos);
  // Absolute refuses: exit 3, file untouched.
  CHECK(RunCommand(tool + " recover " + path + " --mode absolute", &out,
                   true) == 3);
  CHECK(ReadFile(path) == damaged);
  // A real recovery cuts the log; then verify is clean.
  CHECK(RunCommand(tool + " recover " + path, &out) == 0);
  CHECK(out.find("dropped") != std::string::npos);
  CHECK(RunCommand(tool + " verify " + path, &out) == 0);
  absl::StatusOr<std::vector<uint64_t>> ids =
      Ids(path, RecoveryMode::kAbsoluteConsistency);
  REQUIRE(ids.ok());
  CHECK(*ids == Range(1, 3));
  // Recovering again changes nothing.
  const std::string after = ReadFile(path);
  CHECK(RunCommand(tool + " recover " + path, &out) == 0);
  CHECK(ReadFile(path) == after);
  // Not a store: a clear error, not a crash.
  WriteFile(dir.File("junk"), std::string(100, 'x'));
  CHECK(RunCommand(tool + " verify " + dir.File("junk"), &out, true) == 3);
  (void)before;
}

}  // namespace
}  // namespace recmap::testing
