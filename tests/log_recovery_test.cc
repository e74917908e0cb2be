// LogRecovery (store/log_recovery.h) on logs written by hand: what each
// recovery mode keeps, cuts and reports.
#include "log_recovery.h"

#include <catch2/catch.hpp>
#include <string>

#include "region_set_fixture.h"
#include "store_index.h"

namespace recmap {
namespace {

using testing::RegionSetFixture;

struct RecoveryFixture : RegionSetFixture {
  RecoveryFixture() : RegionSetFixture(1) {
    LoadAll(1);
    REQUIRE(set().Format(0, /*fresh=*/true).ok());
    StoreIndex::Config c;
    c.path = &path();
    c.regions = &set();
    c.shared_page = base() + kSharedPageOffset;
    index.Init(c);
  }
  absl::StatusOr<uint64_t> Run(bool full, RecoveryMode mode,
                               bool read_only = false) {
    LogRecovery::Config c;
    c.path = &path();
    c.recovery_mode = mode;
    c.read_only = read_only;
    c.regions = &set();
    c.index = &index;
    c.report = &report;
    return LogRecovery(c).Run(full);
  }
  StoreIndex index;
  RecoveryReport report;
};

TEST_CASE(
    "LogRecovery keeps whole records past a lost tail and cuts a torn one",
    "[log_recovery]") {
  RecoveryFixture f;
  f.Append(0, RecordType::kPut, 1, 1, "one");
  const uint64_t tail = f.set()[0].ref.committed_tail().load();
  f.Append(0, RecordType::kPut, 2, 2, "two");
  const uint64_t end = f.set()[0].ref.committed_tail().load();
  // The second record's tail update was lost, and a torn record follows.
  f.set()[0].ref.committed_tail().store(tail);
  f.set()[0].ref.base[end] = 5;
  absl::StatusOr<uint64_t> max_seq =
      f.Run(/*full=*/true, RecoveryMode::kTolerateTornTail);
  REQUIRE(max_seq.ok());
  CHECK(*max_seq == 2);
  REQUIRE(f.report.regions.size() == 1);
  const RegionRecovery& rr = f.report.regions[0];
  CHECK(rr.committed_tail == tail);
  CHECK(rr.valid_end == end);
  CHECK(rr.records == 2);
  CHECK(rr.changed());
  // The log now ends after the second record; the torn bytes are gone.
  CHECK(f.set()[0].ref.committed_tail().load() == end);
  CHECK(f.set()[0].ref.base[end] == 0);
  CHECK(f.set()[0].ref.owner_pid().load() == kScrubOwner);
  CHECK(f.set()[0].indexed_end.load() == end);
}

TEST_CASE("LogRecovery in absolute mode refuses a log past its tail",
          "[log_recovery]") {
  RecoveryFixture f;
  f.Append(0, RecordType::kPut, 1, 1, "one");
  const uint64_t tail = f.set()[0].ref.committed_tail().load();
  f.set()[0].ref.committed_tail().store(tail + 8);  // past the log
  absl::StatusOr<uint64_t> r =
      f.Run(/*full=*/true, RecoveryMode::kAbsoluteConsistency);
  CHECK(absl::IsDataLoss(r.status()));
}

TEST_CASE("LogRecovery read-only reports published bytes it cannot read",
          "[log_recovery]") {
  RecoveryFixture f;
  f.Append(0, RecordType::kPut, 1, 1, "one");
  const uint64_t end = f.set()[0].ref.committed_tail().load();
  f.set()[0].ref.committed_tail().store(end + 64);  // 64 bytes unreadable
  absl::StatusOr<uint64_t> r =
      f.Run(/*full=*/true, RecoveryMode::kTolerateTornTail,
            /*read_only=*/true);
  REQUIRE(r.ok());
  CHECK(f.report.unreadable_bytes == 64);
  REQUIRE(f.report.unreadable.size() == 1);
  CHECK(f.set()[0].unreadable_bytes == 64);
  // Nothing in the file changed.
  CHECK(f.set()[0].ref.committed_tail().load() == end + 64);
}

TEST_CASE("LogRecovery with a live writer holds it to its published tail",
          "[log_recovery]") {
  RecoveryFixture f;
  f.Append(0, RecordType::kPut, 1, 1, "one");
  const uint64_t end = f.set()[0].ref.committed_tail().load();
  f.set()[0].ref.committed_tail().store(end + 64);  // zeros below the tail
  CHECK(absl::IsDataLoss(
      f.Run(/*full=*/false, RecoveryMode::kTolerateTornTail).status()));
}

}  // namespace
}  // namespace recmap
