// Compaction atomicity: the compacting process is killed (SIGKILL) right
// after each step, and in the middle of the copy. Afterwards exactly one
// complete generation is at the path -- the original before the rename,
// the compacted store after it -- with every live record intact, and the
// next compaction succeeds.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>

#include "compaction.h"
#include "recmap/compaction.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

using LiveMap = std::map<uint64_t, std::pair<uint64_t, std::string>>;

LiveMap ReadLive(Store& s) {
  LiveMap m;
  REQUIRE(s.ForEachLive([&](const RecordView& v) {
             m[v.id] = {v.sequence, std::string(v.value)};
             return true;
           }).ok());
  return m;
}

constexpr uint64_t kIds = 2000;
constexpr uint64_t kRecordsBefore = 2 * kIds + kIds / 4;
constexpr uint64_t kLive = kIds - kIds / 4;

void Fill(const std::string& path) {
  auto s = OpenOrDie(path, SmallOptions());
  for (int round = 0; round < 2; ++round)
    for (uint64_t id = 0; id < kIds; ++id)
      REQUIRE(s->Put(id, Payload(round, id, 300)).ok());
  for (uint64_t id = 0; id < kIds; id += 4) REQUIRE(s->Delete(id).ok());
}

// Kills the compaction after `step`, or (kill_mid_copy) after half the
// records were copied, then checks the path.
void CrashAt(int step, bool kill_mid_copy) {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  Fill(path);
  LiveMap expected;
  {
    auto s = OpenOrDie(path, SmallOptions());
    expected = ReadLive(*s);
  }
  REQUIRE(expected.size() == kLive);
  pid_t pid = testing::ForkChild([&] {
    CompactionOptions co;
    auto step_hook = [&](CompactionStep k) {
      if (!kill_mid_copy && static_cast<int>(k) == step) ::raise(SIGKILL);
    };
    co.progress = [&](const CompactionProgress& p) {
      if (kill_mid_copy && p.records_done >= p.records_total / 2)
        ::raise(SIGKILL);
    };
    return Compact(path, co, step_hook).ok() ? 0 : 1;
  });
  REQUIRE(testing::WaitChild(pid) == 128 + SIGKILL);

  const bool renamed =
      !kill_mid_copy && step >= static_cast<int>(CompactionStep::kRenamed);
  {
    auto s = OpenOrDie(path, SmallOptions());
    CHECK(ReadLive(*s) == expected);
    CHECK(s->Stats().records == (renamed ? kLive : kRecordsBefore));
  }
  // Whatever was left behind, compaction runs again and leaves one file.
  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  REQUIRE(r.ok());
  CHECK(r->records_kept == kLive);
  CHECK(::access((path + ".compact-tmp").c_str(), F_OK) != 0);
  auto s = OpenOrDie(path, SmallOptions());
  CHECK(ReadLive(*s) == expected);
  CHECK(s->Stats().records == kLive);
}

TEST_CASE("compaction killed in the middle of the copy") { CrashAt(0, true); }

TEST_CASE("compaction killed after each step") {
  for (int step = static_cast<int>(CompactionStep::kLocked);
       step <= static_cast<int>(CompactionStep::kRenameSynced); ++step) {
    INFO("killed after step "
         << CompactionStepName(static_cast<CompactionStep>(step)));
    CrashAt(step, false);
  }
}

}  // namespace
}  // namespace recmap
