// The background index writer (store/index_persister.cc): as regions seal,
// the index of the sealed regions is written beside the store while its
// writers run; a handle opened meanwhile maps it and scans only the rest.
// A record past a covered tail that is older than a covered record of the
// same id (two writers, one region sealed before the other) never
// shadows it. No test here depends on timing: each waits (bounded) for
// the index to appear.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "coding.h"
#include "index_model.h"
#include "location.h"
#include "persisted_index.h"
#include "recmap/store.h"
#include "region_set_fixture.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap {
namespace {

using testing::CheckModel;
using testing::Fill;
using testing::Model;
using testing::OpenOrDie;
using testing::Payload;
using testing::TempDir;

Options BackgroundOptions() {
  // Every store gets an index file, and the thread at the first seal.
  SetTuningForTesting({.persist_index_min_records = 0,
                       .persist_index_background_min_records = 0});
  Options o = testing::SmallOptions();  // 64 KiB regions: many seal
  o.persist_index_in_background = true;
  return o;
}

Options ReaderOptions() {
  Options o = BackgroundOptions();
  o.create_if_missing = false;
  o.read_only = true;
  return o;
}

const RecoveryReport& Report(Store& s) { return s.last_recovery(); }

// Waits (at most about a minute, whatever the load) until the index file
// of `s` satisfies `want`; returns whether it did.
bool WaitForIndex(Store& s,
                  const std::function<bool(const PersistedIndex&)>& want) {
  for (int round = 0; round < 6000; ++round) {
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix = PersistedIndex::Load(
        IndexPathFor(s.info().path), s.info().uuid, s.info().region_size);
    if (ix.ok() && want(**ix)) return true;
    ::usleep(10000);
  }
  return false;
}

uint64_t CoveredRegions(const PersistedIndex& ix) {
  uint64_t n = 0;
  for (const IndexedRegion& g : ix.regions()) n += g.tail > kRegionDataOffset;
  return n;
}

TEST_CASE("background index: written as regions seal, used by an opener",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  auto s = OpenOrDie(path, BackgroundOptions());
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  Fill(**w, m, 4000, 1);
  REQUIRE(WaitForIndex(
      *s, [](const PersistedIndex& ix) { return CoveredRegions(ix) >= 3; }));
  {
    // What the file covers: sealed regions, each to its final tail (the
    // region being written, less than 1 MiB of log, is not covered yet).
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix = PersistedIndex::Load(
        IndexPathFor(path), s->info().uuid, s->info().region_size);
    REQUIRE(ix.ok());
    const StoreStats st = s->Stats();
    uint64_t covered_records = 0;
    for (size_t i = 0; i < (*ix)->regions().size(); ++i) {
      const IndexedRegion& g = (*ix)->regions()[i];
      INFO("region " << i);
      REQUIRE(i < st.region_stats.size());
      CHECK(g.epoch == st.region_stats[i].epoch);
      if (g.tail == kRegionDataOffset) continue;
      CHECK(st.region_stats[i].sealed);
      CHECK(g.tail == st.region_stats[i].committed_tail);
      CHECK(g.records == st.region_stats[i].records);
      covered_records += g.records;
    }
    CHECK(covered_records > 0);
  }
  // An opener while the writer is live adopts it and scans only the rest.
  auto r = OpenOrDie(path, ReaderOptions());
  CHECK(Report(*r).persisted_index_used);
  CHECK(Report(*r).scanned_records < r->Stats().records);
  CheckModel(*r, m);
  // Later writes (over indexed ids too) win over the file's entries.
  Fill(**w, m, 1500, 2);
  CheckModel(*r, m);
  CheckModel(*s, m);
  w->reset();
  s.reset();  // the clean close covers what little is left
  r.reset();
  auto again = OpenOrDie(path, BackgroundOptions());
  CHECK(Report(*again).persisted_index_used);
  CHECK(Report(*again).scanned_records == 0);
  CheckModel(*again, m);
}

TEST_CASE(
    "background index: an older record past a covered tail does not "
    "shadow a newer covered one",
    "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  auto s = OpenOrDie(path, BackgroundOptions());
  auto a = s->NewWriter();
  auto b = s->NewWriter();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  // a owns region 0 and keeps it (active, so never covered); b's region 1
  // gets the newer versions of ids 7 and 9 (a tombstone), then seals.
  REQUIRE((*a)->Put(7, "old seven").ok());
  REQUIRE((*a)->Put(9, "old nine").ok());
  REQUIRE((*b)->Put(7, "new seven").ok());
  REQUIRE((*b)->Delete(9).ok());
  REQUIRE((*a)->region() == 0);
  REQUIRE((*b)->region() == 1);
  uint64_t id = 100;
  while ((*b)->region() == 1) {
    REQUIRE((*b)->Put(id, Payload(3, id)).ok());
    ++id;
  }
  REQUIRE(WaitForIndex(*s, [](const PersistedIndex& ix) {
    return ix.regions().size() >= 2 &&
           ix.regions()[1].tail > kRegionDataOffset &&
           ix.regions()[0].tail == kRegionDataOffset;
  }));
  {
    auto r = OpenOrDie(path, ReaderOptions());
    REQUIRE(Report(*r).persisted_index_used);
    absl::StatusOr<std::string_view> seven = r->Get(7);
    REQUIRE(seven.ok());
    CHECK(*seven == "new seven");
    CHECK(r->Get(9).status().code() == absl::StatusCode::kNotFound);
    uint64_t sevens = 0;
    REQUIRE(r->ForEachLive([&](const RecordView& v) {
               if (v.id == 7) {
                 ++sevens;
                 CHECK(v.value == "new seven");
               }
               CHECK(v.id != 9);
               return true;
             }).ok());
    CHECK(sevens == 1);
    CHECK(r->Stats().live_records == id - 100 + 1);
    // A write after the index wins again.
    REQUIRE((*a)->Put(7, "newest seven").ok());
    seven = r->Get(7);
    REQUIRE(seven.ok());
    CHECK(*seven == "newest seven");
  }
}

TEST_CASE(
    "background index: not written when turned off or below the "
    "threshold",
    "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Options o = BackgroundOptions();
  SECTION("off") { o.persist_index_in_background = false; }
  SECTION("below persist_index_min_records") {
    SetTuningForTesting({.persist_index_min_records = 1000000});
  }
  SECTION("below persist_index_background_min_records") {
    SetTuningForTesting({.persist_index_min_records = 0,
                         .persist_index_background_min_records = 1000000});
  }
  Model m;
  auto s = OpenOrDie(path, o);
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  Fill(**w, m, 3000, 4);
  // Bounded: the persister is idle once it has handled every seal.
  for (int i = 0; i < 6000 && !StorePeer::Rep(*s).IndexPersisterIdle(); ++i)
    ::usleep(10000);
  CHECK(StorePeer::Rep(*s).IndexPersisterIdle());
  CHECK_FALSE(std::filesystem::exists(IndexPathFor(path)));
  CheckModel(*s, m);
}

TEST_CASE("background index: a damaged index on disk is rebuilt from the log",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  std::array<uint8_t, 16> uuid;
  uint64_t region_size;
  uint64_t before = 0;
  {
    auto s = OpenOrDie(path, BackgroundOptions());
    uuid = s->info().uuid;
    region_size = s->info().region_size;
    auto w = s->NewWriter();
    REQUIRE(w.ok());
    Fill(**w, m, 3000, 5);
    REQUIRE(WaitForIndex(
        *s, [](const PersistedIndex& ix) { return CoveredRegions(ix) >= 3; }));
  }
  {
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
        PersistedIndex::Load(IndexPathFor(path), uuid, region_size);
    REQUIRE(ix.ok());
    before = CoveredRegions(**ix);
  }
  // A bit flipped in the table, at rest: the header still reads, the
  // page's checksum fails.
  std::string f = testing::ReadFile(IndexPathFor(path));
  const IndexLayout l =
      IndexLayout::For(DecodeFixed32(f.data() + kIxRegionCapacity),
                       DecodeFixed64(f.data() + kIxSlots));
  REQUIRE(f.size() == l.file_size());
  f[l.slot_offset() + 100] ^= 0x04;
  testing::WriteFile(IndexPathFor(path), f);
  CHECK(absl::IsDataLoss(
      PersistedIndex::Load(IndexPathFor(path), uuid, region_size).status()));
  auto s = OpenOrDie(path, BackgroundOptions());
  CHECK_FALSE(Report(*s).persisted_index_used);
  CHECK_THAT(Report(*s).persisted_index_rejected,
             Catch::Contains("checksum mismatch"));
  CheckModel(*s, m);
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  Fill(**w, m, 3000, 6);  // more regions seal: the file is written anew
  REQUIRE(WaitForIndex(*s, [&](const PersistedIndex& ix) {
    return CoveredRegions(ix) > before;
  }));
  auto r = OpenOrDie(path, ReaderOptions());
  CHECK(Report(*r).persisted_index_used);
  CheckModel(*r, m);
}

TEST_CASE(
    "background index: a file a writable open rejected is not adopted once "
    "its recovery makes the log agree with it",
    "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  constexpr uint64_t kVictim = uint64_t{1} << 51;
  Model m;
  {
    auto s = OpenOrDie(path, BackgroundOptions());
    REQUIRE(s->Put(kVictim, "old value").ok());
    auto w = s->NewWriter();
    REQUIRE(w.ok());
    Fill(**w, m, 3000, 9);
    REQUIRE(s->Put(kVictim, "new value").ok());
    m[kVictim] = "new value";
  }  // the close covers the whole log
  RecordLocation old_at, new_at;
  std::array<uint8_t, 16> uuid;
  uint64_t region_size, new_region_offset, old_region_offset;
  {
    Options o = ReaderOptions();
    o.persist_index = false;
    auto s = OpenOrDie(path, o);
    uuid = s->info().uuid;
    region_size = s->info().region_size;
    for (uint32_t i = 0; i < s->Stats().regions; ++i) {
      REQUIRE(s->ForEachInRegion(i, [&](const RecordView& v) {
                 if (v.id == kVictim)
                   (v.value == "old value" ? old_at : new_at) = v.location;
                 return true;
               }).ok());
    }
    REQUIRE(new_at.file_offset > old_at.file_offset);
    const StoreStats st = s->Stats();
    old_region_offset = st.region_stats[old_at.region].file_offset;
    new_region_offset = st.region_stats[new_at.region].file_offset;
  }
  {
    // The index lies, checksums and all: the victim's entry names its
    // superseded record.
    absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
        PersistedIndexWriter::Open(IndexPathFor(path), uuid, region_size);
    REQUIRE(w.ok());
    REQUIRE((*w)->regions().size() > new_at.region);
    (*w)->BeginUpdate(old_at.region);
    REQUIRE((*w)->Upsert(
        kVictim,
        Location::Pack(old_at.region, old_at.file_offset - old_region_offset),
        [](uint64_t) { return true; }));
    (*w)->EndUpdate();
  }
  // The committed tail of the victim's region damaged: an opener rejects
  // the index (its covered tail is past a tail it cannot trust) and reads
  // the log whole; a writable one recovers the tail to the end of the log,
  // which is what the index says again.
  {
    std::string f = testing::ReadFile(path);
    EncodeFixed64(f.data() + new_region_offset + kRegionStatePageOffset +
                      kStateCommittedTail,
                  0x7777777777777777);
    testing::WriteFile(path, f);
  }
  {
    Options o = BackgroundOptions();
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    CHECK_FALSE(Report(*s).persisted_index_used);
    CHECK_THAT(Report(*s).persisted_index_rejected,
               Catch::Contains("committed tail"));
    CheckModel(*s, m);
  }
  auto r = OpenOrDie(path, ReaderOptions());
  absl::StatusOr<std::string_view> v = r->Get(kVictim);
  REQUIRE(v.ok());
  CHECK(*v == "new value");
  CheckModel(*r, m);
}

}  // namespace
}  // namespace recmap

namespace recmap {
namespace {

TEST_CASE("CheckCoverage holds an index to the log it describes",
          "[index_persister]") {
  testing::RegionSetFixture f(2);
  f.LoadAll(2);
  REQUIRE(f.set().Format(0, /*fresh=*/true).ok());
  RegionRef ref;
  uint64_t epoch = 0;
  REQUIRE(f.set().ReadHeaderAt(0, &ref, &epoch));
  ref.committed_tail().store(kRegionDataOffset + 64);
  IndexedRegion g;
  g.epoch = epoch;
  g.tail = kRegionDataOffset + 64;
  CHECK(CheckCoverage(f.set(), {}).ok());
  CHECK(CheckCoverage(f.set(), {g}).ok());
  // Each rule broken in turn.
  CHECK(absl::IsFailedPrecondition(CheckCoverage(f.set(), {g, g, g})));
  CHECK(absl::IsFailedPrecondition(CheckCoverage(f.set(), {g, g})));
  IndexedRegion reformatted = g;
  reformatted.epoch = epoch + 1;
  CHECK(absl::IsFailedPrecondition(CheckCoverage(f.set(), {reformatted})));
  IndexedRegion past_tail = g;
  past_tail.tail = kRegionDataOffset + 72;
  CHECK(absl::IsFailedPrecondition(CheckCoverage(f.set(), {past_tail})));
  IndexedRegion below_data = g;
  below_data.tail = 0;
  CHECK(absl::IsFailedPrecondition(CheckCoverage(f.set(), {below_data})));
}

}  // namespace
}  // namespace recmap
