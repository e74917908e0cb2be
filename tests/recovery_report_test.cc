// Store::last_recovery() from outside the library: only the public headers.
// A store whose log is damaged past its durable tail is opened in each
// recovery mode, and the report must say exactly what was cut.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "recmap/recovery.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::SmallOptions;
using testing::TempDir;

// 96-byte values: with a header of a multiple of 8 bytes a record has no
// padding, so the byte before a record is the previous record's value.
std::string Value(uint64_t id) { return std::string(96, 'a' + id % 26); }

// Where the test store's records are, as the public API reports them.
struct Layout {
  uint64_t region_start = 0;  // file offset of region 0
  uint64_t committed_tail = 0;
  uint64_t durable_tail = 0;
  uint64_t record_offset[11] = {};  // file offset of record id 1..10
  uint64_t end_of_10 = 0;           // file offset past record 10
};

// Ids 1..5 synced, 6..10 only published; then a byte of record 8's value
// flipped, as a lost page or a bad disk would leave it.
Layout MakeDamagedStore(const std::string& path) {
  Layout l;
  {
    auto s = OpenOrDie(path, SmallOptions());
    for (uint64_t id = 1; id <= 10; ++id) {
      REQUIRE(s->Put(id, Value(id)).ok());
      if (id == 5) REQUIRE(s->Sync().ok());
    }
    for (uint64_t id = 1; id <= 10; ++id) {
      absl::StatusOr<RecordView> r = s->GetRecord(id);
      REQUIRE(r.ok());
      REQUIRE(r->location.region == 0);
      l.record_offset[id] = r->location.file_offset;
    }
    const StoreStats st = s->Stats();
    REQUIRE(st.regions == 1);
    l.region_start = st.region_stats[0].file_offset;
    l.committed_tail = st.region_stats[0].committed_tail;
    l.durable_tail = st.region_stats[0].durable_tail;
    REQUIRE(s->Close().ok());
  }
  l.end_of_10 = l.region_start + l.committed_tail;
  // The records are consecutive: 6..10 were appended after the Sync.
  for (uint64_t id = 7; id <= 10; ++id) {
    REQUIRE(l.record_offset[id] - l.record_offset[id - 1] ==
            l.record_offset[7] - l.record_offset[6]);
  }
  REQUIRE(l.end_of_10 - l.record_offset[10] ==
          l.record_offset[7] - l.record_offset[6]);
  // The durable tail is below record 8: the damage is a torn tail.
  REQUIRE(l.region_start + l.durable_tail <= l.record_offset[6]);
  const int fd = ::open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  char c = 0;
  const off_t at = static_cast<off_t>(l.record_offset[9] - 1);
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  c = static_cast<char>(c ^ 0x40);
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);
  return l;
}

uint64_t RecordsInRegion0(Store& s) {
  uint64_t n = 0;
  REQUIRE(s.ForEachInRegion(0, [&](const RecordView&) {
             ++n;
             return true;
           }).ok());
  return n;
}

TEST_CASE("a clean open reports nothing cut", "[recovery]") {
  TempDir dir;
  const std::string path = dir.File("r.rmap");
  { REQUIRE(OpenOrDie(path, SmallOptions())->Put(1, "x").ok()); }
  auto s = OpenOrDie(path, SmallOptions());
  const RecoveryReport& r = s->last_recovery();
  CHECK(r.mode == RecoveryMode::kTolerateTornTail);
  CHECK(r.full_recovery);
  REQUIRE(r.regions.size() == 1);
  CHECK(!r.regions[0].changed());
  CHECK(r.regions[0].dropped_bytes() == 0);
  CHECK(r.regions[0].stop == LogEnd::kZero);
  CHECK(r.regions[0].records == RecordsInRegion0(*s));
  CHECK(r.trailing_bytes == 0);
  CHECK(r.cut_region == -1);
  CHECK(r.unreadable_bytes == 0);
}

TEST_CASE("a torn tail: the report names the records cut", "[recovery]") {
  TempDir dir;
  const std::string path = dir.File("r.rmap");
  const Layout l = MakeDamagedStore(path);
  const uint64_t cut_at = l.record_offset[8] - l.region_start;
  const uint64_t dropped = l.end_of_10 - l.record_offset[8];

  SECTION("read-only: nothing is cut, the published bytes are unreadable") {
    Options o = SmallOptions();
    o.read_only = true;
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    const RecoveryReport& r = s->last_recovery();
    CHECK(r.full_recovery);
    REQUIRE(r.regions.size() == 1);
    const RegionRecovery& rr = r.regions[0];
    CHECK(rr.committed_tail == l.committed_tail);
    CHECK(rr.durable_tail == l.durable_tail);
    CHECK(rr.valid_end == cut_at);
    CHECK(rr.stop == LogEnd::kBadChecksum);
    CHECK(std::string(LogEndName(rr.stop)) == "checksum mismatch");
    CHECK(IsDamage(rr.stop));
    CHECK(rr.stop_offset == cut_at);
    CHECK(rr.dropped_bytes() == dropped);
    CHECK(rr.changed());
    CHECK(r.unreadable_bytes == dropped);
    CHECK(r.unreadable.size() == 1);
    CHECK(s->Stats().unreadable_bytes == dropped);
  }

  SECTION("tolerate (the default): cut at the damaged record") {
    {
      auto s = OpenOrDie(path, SmallOptions());
      const RecoveryReport& r = s->last_recovery();
      CHECK(r.mode == RecoveryMode::kTolerateTornTail);
      CHECK(r.full_recovery);
      REQUIRE(r.regions.size() == 1);
      const RegionRecovery& rr = r.regions[0];
      CHECK(rr.region == 0);
      CHECK(rr.committed_tail == l.committed_tail);
      CHECK(rr.durable_tail == l.durable_tail);
      CHECK(rr.valid_end == cut_at);
      CHECK(rr.stop == LogEnd::kBadChecksum);
      CHECK(rr.stop_offset == cut_at);
      CHECK(rr.dropped_bytes() == dropped);
      CHECK(rr.skipped_bytes == 0);
      CHECK(!rr.header_damaged);
      CHECK(!rr.reformatted);
      CHECK(rr.changed());
      // Ids 1..7 and whatever resume marker the Sync left.
      CHECK(rr.records == RecordsInRegion0(*s));
      CHECK(r.unreadable_bytes == 0);
      CHECK(r.unreadable.empty());
      CHECK(s->Get(7).ok());
      CHECK(absl::IsNotFound(s->Get(8).status()));
      CHECK(absl::IsNotFound(s->Get(10).status()));
      CHECK(s->Stats().region_stats[0].committed_tail == cut_at);
    }
    // The cut is done: the next open finds a clean log.
    auto again = OpenOrDie(path, SmallOptions());
    REQUIRE(again->last_recovery().regions.size() == 1);
    CHECK(!again->last_recovery().regions[0].changed());
    CHECK(again->last_recovery().regions[0].valid_end == cut_at);
  }

  SECTION("salvage: the damaged record is skipped, the rest kept") {
    Options o = SmallOptions();
    o.recovery_mode = RecoveryMode::kSalvage;
    auto s = OpenOrDie(path, o);
    const RecoveryReport& r = s->last_recovery();
    CHECK(r.mode == RecoveryMode::kSalvage);
    REQUIRE(r.regions.size() == 1);
    const RegionRecovery& rr = r.regions[0];
    CHECK(rr.valid_end == l.committed_tail);
    CHECK(rr.stop == LogEnd::kBadChecksum);
    CHECK(rr.stop_offset == cut_at);
    CHECK(rr.skipped_bytes == l.record_offset[9] - l.record_offset[8]);
    CHECK(rr.dropped_bytes() == 0);
    CHECK(rr.changed());
    CHECK(absl::IsNotFound(s->Get(8).status()));
    CHECK(s->Get(9).ok());
    CHECK(s->Get(10).ok());
  }

  SECTION("absolute consistency: the open fails and reports nothing") {
    Options o = SmallOptions();
    o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
    CHECK(absl::IsDataLoss(s.status()));
  }
}

}  // namespace
}  // namespace recmap
