// The persisted offset index ("<store>.idx"): here written at a clean
// close (persist_index_in_background off; index_persister_test.cc covers
// the background writer), mapped at open instead of rescanning the log, and
// never trusted when it does not describe the log: damaged, truncated, another
// store's, newer than the store, naming a reformatted region, or pointing at
// the wrong record. In every case every Get returns what the model says.
#include "persisted_index.h"

#include <xxhash.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "coding.h"
#include "file_ops.h"
#include "index_model.h"
#include "offset_index.h"
#include "recmap/store.h"
#include "store_rep.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap {
namespace {

using testing::CheckModel;
using testing::Fill;
using testing::Model;
using testing::OpenOrDie;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// The clean-close index alone: the background writer (tested in
// index_persister_test.cc) would write the file while these tests expect
// none.
Options IndexOptions() {
  SetTuningForTesting({.persist_index_min_records = 0});
  Options o = testing::SmallOptions();
  o.persist_index_in_background = false;
  return o;
}

const RecoveryReport& Report(Store& s) { return s.last_recovery(); }

TEST_CASE("offset index: slots, growth and lookups", "[index]") {
  OffsetIndex ix;
  CHECK(ix.Find(5) == 0);
  for (uint64_t id = 0; id < 100000; ++id) *ix.FindOrInsert(id * 977) = id + 1;
  CHECK(ix.size() == 100000);
  for (uint64_t id = 0; id < 100000; ++id) REQUIRE(ix.Find(id * 977) == id + 1);
  CHECK(ix.Find(1) == 0);
  // Overwriting keeps one slot per id; the table stays at most 80% full
  // and at least half full after growth (the memory target).
  *ix.FindOrInsert(977) = 42;
  CHECK(ix.Find(977) == 42);
  CHECK(ix.size() == 100000);
  CHECK(ix.MemoryBytes() <= 32 * ix.size());
  CHECK(ix.size() * 5 <= ix.slots() * 4);
}

TEST_CASE("persisted index: written at clean close, used at open", "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m, 3000, 1);
    CHECK_FALSE(std::filesystem::exists(IndexPathFor(path)));
  }
  REQUIRE(std::filesystem::exists(IndexPathFor(path)));
  {
    auto s = OpenOrDie(path, IndexOptions());
    CHECK(Report(*s).persisted_index_used);
    CheckModel(*s, m);
    // New writes over indexed ids win over the persisted entries.
    Fill(*s, m, 2000, 2);
    CheckModel(*s, m);
  }
  {
    auto s = OpenOrDie(path, IndexOptions());
    CHECK(Report(*s).persisted_index_used);
    CheckModel(*s, m);
  }
  // Below the threshold nothing is written; persist_index off ignores it.
  Options o = IndexOptions();
  o.persist_index = false;
  {
    auto s = OpenOrDie(path, o);
    CHECK_FALSE(Report(*s).persisted_index_used);
    CheckModel(*s, m);
  }
}

TEST_CASE("persisted index: a damaged or truncated file is rebuilt",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m, 3000, 3);
  }
  const std::string good = ReadFile(IndexPathFor(path));
  REQUIRE(good.size() > 200);
  // Every 97th byte flipped, one at a time, and a few truncations.
  for (size_t at = 0; at < good.size(); at += good.size() / 13 + 1) {
    for (int mode = 0; mode < 2; ++mode) {
      std::string bad = good;
      if (mode == 0) {
        bad[at] ^= 0x20;
      } else {
        bad.resize(at);
      }
      WriteFile(IndexPathFor(path), bad);
      auto s = OpenOrDie(path, IndexOptions());
      INFO("offset " << at << " mode " << mode);
      CHECK_FALSE(Report(*s).persisted_index_used);
      CHECK_FALSE(Report(*s).persisted_index_rejected.empty());
      CheckModel(*s, m);
    }
  }
  // The close after a rejected index wrote a good one again.
  auto s = OpenOrDie(path, IndexOptions());
  CHECK(Report(*s).persisted_index_used);
  CheckModel(*s, m);
}

TEST_CASE("persisted index: another store's index is rejected", "[index]") {
  TempDir dir;
  const std::string a = dir.File("a.rmap"), b = dir.File("b.rmap");
  Model ma, mb;
  {
    auto s = OpenOrDie(a, IndexOptions());
    Fill(*s, ma, 2000, 4);
  }
  {
    auto s = OpenOrDie(b, IndexOptions());
    Fill(*s, mb, 2000, 5);
  }
  std::filesystem::copy_file(IndexPathFor(a), IndexPathFor(b),
                             std::filesystem::copy_options::overwrite_existing);
  auto s = OpenOrDie(b, IndexOptions());
  CHECK_FALSE(Report(*s).persisted_index_used);
  CHECK_THAT(Report(*s).persisted_index_rejected,
             Catch::Contains("another store"));
  CheckModel(*s, mb);
}

TEST_CASE("persisted index: stale indexes", "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  const std::string old_store = dir.File("old.rmap");
  Model m1, m2;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m1, 2000, 6);
  }
  const std::string index1 = ReadFile(IndexPathFor(path));
  std::filesystem::copy_file(path, old_store);
  m2 = m1;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m2, 3000, 7);
  }
  const std::string index2 = ReadFile(IndexPathFor(path));

  SECTION("an older index of the same log is exact for its prefix") {
    WriteFile(IndexPathFor(path), index1);
    auto s = OpenOrDie(path, IndexOptions());
    CHECK(Report(*s).persisted_index_used);
    CheckModel(*s, m2);
  }
  SECTION("an index newer than the store is rejected") {
    std::filesystem::remove(path);
    std::filesystem::rename(old_store, path);
    WriteFile(IndexPathFor(path), index2);
    auto s = OpenOrDie(path, IndexOptions());
    CHECK_FALSE(Report(*s).persisted_index_used);
    CHECK_FALSE(Report(*s).persisted_index_rejected.empty());
    CheckModel(*s, m1);
  }
}

// Edits the store's index in place through PersistedIndexWriter (so that
// its checksums are right) as `edit` changed its regions or entries.
void Forge(const std::string& path,
           const std::function<void(std::vector<IndexedRegion>&,
                                    std::vector<OffsetIndex::Slot>&)>& edit) {
  std::array<uint8_t, 16> uuid;
  uint64_t region_size;
  {
    Options o = IndexOptions();
    o.read_only = true;
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    uuid = s->info().uuid;
    region_size = s->info().region_size;
  }
  absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
      PersistedIndexWriter::Open(IndexPathFor(path), uuid, region_size);
  REQUIRE(w.ok());
  std::vector<IndexedRegion> regions = (*w)->regions();
  std::vector<OffsetIndex::Slot> entries;
  {
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
        PersistedIndex::Load(IndexPathFor(path), uuid, region_size);
    REQUIRE(ix.ok());
    (*ix)->ForEach([&](uint64_t id, uint64_t loc) {
      entries.push_back({id, loc});
    });
  }
  const std::vector<IndexedRegion> old_regions = regions;
  const std::vector<OffsetIndex::Slot> old_entries = entries;
  edit(regions, entries);
  REQUIRE(regions.size() == old_regions.size());
  REQUIRE(entries.size() == old_entries.size());
  (*w)->BeginUpdate(0);
  for (uint32_t i = 0; i < regions.size(); ++i) (*w)->SetRegion(i, regions[i]);
  for (size_t k = 0; k < entries.size(); ++k) {
    if (entries[k].location != old_entries[k].location)
      (*w)->Upsert(entries[k].id, entries[k].location,
                   [](uint64_t) { return true; });
  }
  (*w)->EndUpdate();
}

TEST_CASE("persisted index: a checksummed but wrong index is never followed",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m, 3000, 8);
  }
  SECTION("a region epoch that is not the region's") {
    Forge(path, [](auto& regions, auto&) { regions[1].epoch ^= 1; });
    auto s = OpenOrDie(path, IndexOptions());
    CHECK_FALSE(Report(*s).persisted_index_used);
    CHECK_THAT(Report(*s).persisted_index_rejected,
               Catch::Contains("reformatted"));
    CheckModel(*s, m);
  }
  SECTION("a covered tail past the committed tail") {
    Forge(path, [](auto& regions, auto&) { regions[0].tail += 4096; });
    auto s = OpenOrDie(path, IndexOptions());
    CHECK_FALSE(Report(*s).persisted_index_used);
    CheckModel(*s, m);
  }
  SECTION("entries pointing at other ids' records") {
    uint64_t victim = 0;
    Forge(path, [&](auto&, auto& entries) {
      REQUIRE(entries.size() > 2);
      std::swap(entries[0].location, entries[1].location);
      victim = entries[0].id;
    });
    auto s = OpenOrDie(path, IndexOptions());
    REQUIRE(Report(*s).persisted_index_used);
    absl::StatusOr<std::string_view> got = s->Get(victim);
    // Never the other id's value: an error naming the index file.
    CHECK(got.status().code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(got.status().message()), Catch::Contains(".idx"));
    // MultiGet checks the entry the same way, per id.
    const uint64_t ids[] = {victim, victim};
    std::vector<absl::StatusOr<std::string_view>> many = s->MultiGet(ids);
    REQUIRE(many.size() == 2);
    for (const auto& v : many)
      CHECK(v.status().code() == absl::StatusCode::kDataLoss);
    // The walks over every entry neither show another id's record nor pass
    // over the forged entries silently (both swapped entries are wrong).
    uint64_t shown = 0;
    absl::Status live = s->ForEachLive([&](const RecordView&) {
      ++shown;
      return true;
    });
    CHECK(live.code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(live.message()), Catch::Contains(".idx"));
    CHECK(shown == 0);  // the index is checked before any record is shown
    StoreStats st = s->Stats();
    CHECK(st.live_records + st.tombstones == m.size() - 2);
  }
  SECTION("entries pointing outside every covered region") {
    uint64_t victim = 0;
    Forge(path, [&](auto&, auto& entries) {
      REQUIRE(!entries.empty());
      entries[0].location = uint64_t{0xffff} << 40 | 1;
      victim = entries[0].id;
    });
    auto s = OpenOrDie(path, IndexOptions());
    REQUIRE(Report(*s).persisted_index_used);
    CHECK(s->Get(victim).status().code() == absl::StatusCode::kDataLoss);
    const uint64_t ids[] = {victim};
    std::vector<absl::StatusOr<std::string_view>> many = s->MultiGet(ids);
    REQUIRE(many.size() == 1);
    CHECK(many[0].status().code() == absl::StatusCode::kDataLoss);
    // The walks over every entry neither follow it nor pass over it
    // silently.
    absl::Status live = s->ForEachLive([](const RecordView&) { return true; });
    CHECK(live.code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(live.message()), Catch::Contains(".idx"));
    StoreStats st = s->Stats();
    CHECK(st.live_records + st.tombstones == m.size() - 1);
  }
}

TEST_CASE("persisted index: ignored outside the default recovery mode",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m, 2000, 9);
  }
  for (RecoveryMode mode :
       {RecoveryMode::kAbsoluteConsistency, RecoveryMode::kSalvage}) {
    Options o = IndexOptions();
    o.recovery_mode = mode;
    o.persist_index = true;
    auto s = OpenOrDie(path, o);
    CHECK_FALSE(Report(*s).persisted_index_used);
    CheckModel(*s, m);
  }
}

TEST_CASE("persisted index: any handle's close extends it, in place",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  auto first = OpenOrDie(path, IndexOptions());
  {
    auto second = OpenOrDie(path, IndexOptions());
    Fill(*second, m, 2000, 10);
  }
  // The other handle is still open: updates are batches under the index
  // lock, never a rewrite of what a live reader maps.
  REQUIRE(std::filesystem::exists(IndexPathFor(path)));
  Fill(*first, m, 1000, 12);
  CheckModel(*first, m);
  first.reset();
  auto s = OpenOrDie(path, IndexOptions());
  CHECK(Report(*s).persisted_index_used);
  CHECK(Report(*s).scanned_records == 0);
  CheckModel(*s, m);
}

TEST_CASE("persisted index: the writer upserts, grows and survives a cut batch",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("x.idx");
  std::array<uint8_t, 16> uuid{};
  uuid[3] = 7;
  constexpr uint64_t kSlots = 100;
  auto w = PersistedIndexWriter::Create(path, uuid, 65536, kSlots, 2);
  REQUIRE(w.ok());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK((*w)->slots() == kSlots);
  // Upsert inserts up to 80% of the slots; a known id is replaced only
  // when `newer` says so.
  (*w)->BeginUpdate(0);
  uint64_t put = 0;
  for (uint64_t id = 1; (*w)->HasRoom(1); ++id) {
    (*w)->Upsert(id * 31, id, [](uint64_t) { return true; });
    ++put;
  }
  CHECK(put == kSlots / 5 * 4);
  CHECK((*w)->entries() == put);
  (*w)->Upsert(31, 777, [](uint64_t old) { return old == 1; });
  (*w)->Upsert(62, 888, [](uint64_t) { return false; });
  CHECK((*w)->entries() == put);
  IndexedRegion r0{11, 8192 + 64, 2, 64, 0};
  (*w)->SetRegion(0, r0);
  (*w)->RaiseMaxSequence(99);
  (*w)->EndUpdate();
  auto ix = PersistedIndex::Load(path, uuid, 65536);
  REQUIRE(ix.ok());
  CHECK_FALSE((*ix)->was_updating());
  CHECK((*ix)->entries() == put);
  CHECK((*ix)->Find(31) == 777);
  CHECK((*ix)->Find(62) == 2);
  CHECK((*ix)->Find(32) == 0);
  CHECK((*ix)->max_sequence() == 99);
  REQUIRE((*ix)->regions().size() == 1);
  CHECK((*ix)->regions()[0].epoch == 11);
  CHECK((*ix)->regions()[0].tail == 8192 + 64);
  // Growth: a new file with the same entries; a reader of the old one
  // keeps a working (no longer extended) table.
  REQUIRE((*w)->Grow(1000, 8).ok());
  CHECK((*w)->slots() == 1000);
  CHECK((*w)->region_capacity() == 8);
  CHECK((*ix)->Find(31) == 777);
  auto grown = PersistedIndex::Load(path, uuid, 65536);
  REQUIRE(grown.ok());
  CHECK((*grown)->slots() == 1000);
  CHECK((*grown)->entries() == put);
  for (uint64_t id = 2; id <= put; ++id)
    REQUIRE((*grown)->Find(id * 31) == (id == 2 ? 2 : id));
  // A batch cut short (its writer killed): the file is still read, its
  // page sums unchecked, and the next writer repairs them.
  (*w)->BeginUpdate(0);
  (*w)->Upsert(5, 50, [](uint64_t) { return true; });
  w->reset();  // no EndUpdate
  auto cut = PersistedIndex::Load(path, uuid, 65536);
  REQUIRE(cut.ok());
  CHECK((*cut)->was_updating());
  CHECK((*cut)->Find(5) == 50);
  CHECK((*cut)->regions()[0].tail == 8192 + 64);
  auto again = PersistedIndexWriter::Open(path, uuid, 65536);
  REQUIRE(again.ok());
  // The cut batch's insert is counted again (the header's count was not).
  CHECK((*again)->entries() == put + 1);
  auto repaired = PersistedIndex::Load(path, uuid, 65536);
  REQUIRE(repaired.ok());
  CHECK_FALSE((*repaired)->was_updating());
  CHECK((*repaired)->Find(5) == 50);
  // A table with no empty slot left refuses a new id instead of probing
  // for ever.
  {
    auto tiny =
        PersistedIndexWriter::Create(dir.File("tiny.idx"), uuid, 65536, 64, 1);
    REQUIRE(tiny.ok());
    (*tiny)->BeginUpdate(0);
    uint64_t stored = 0;
    for (uint64_t id = 1; id <= 100; ++id)
      stored += (*tiny)->Upsert(id, id, [](uint64_t) { return true; });
    CHECK(stored == 64);
    CHECK((*tiny)->Upsert(7, 700, [](uint64_t) { return true; }));
    (*tiny)->EndUpdate();
  }
  // Another store's uuid or region size: rejected.
  std::array<uint8_t, 16> other = uuid;
  other[0] ^= 1;
  CHECK(absl::IsDataLoss(PersistedIndex::Load(path, other, 65536).status()));
  CHECK(absl::IsDataLoss(PersistedIndex::Load(path, uuid, 131072).status()));
  // Written in another boot: not trusted.
  std::string f = ReadFile(path);
  f[kIxBootId] ^= 1;
  EncodeFixed64(
      f.data() + kIxHeaderChecksum,
      XXH3_64bits_withSeed(f.data(), kIxHeaderChecksum, kIndexChecksumSeed));
  WriteFile(path, f);
  absl::Status boot = PersistedIndex::Load(path, uuid, 65536).status();
  CHECK(boot.code() == absl::StatusCode::kFailedPrecondition);
  CHECK_THAT(std::string(boot.message()), Catch::Contains("booted"));
}

// Sets the version field of the index file at `path` and fixes its header
// checksum (docs/FORMAT.md: XXH3 over the header page's first 4088 bytes).
void SetVersion(const std::string& path, uint32_t version) {
  std::string f = ReadFile(path);
  REQUIRE(f.size() >= kIndexPageSize);
  EncodeFixed32(f.data() + kIxVersion, version);
  EncodeFixed64(
      f.data() + kIxHeaderChecksum,
      XXH3_64bits_withSeed(f.data(), kIxHeaderChecksum, kIndexChecksumSeed));
  WriteFile(path, f);
}

TEST_CASE("persisted index: only version 3 is read", "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m, 2000, 11);
  }
  const std::string written = ReadFile(IndexPathFor(path));
  CHECK(DecodeFixed32(written.data() + 8) == kIndexVersion);
  for (uint32_t v : {0u, 1u, 2u, 3u, 4u}) {
    WriteFile(IndexPathFor(path), written);
    SetVersion(IndexPathFor(path), v);
    Options o = IndexOptions();
    o.read_only = true;
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    INFO("version " << v);
    CHECK(Report(*s).persisted_index_used == (v == 3));
    if (v != 3) {
      CHECK_THAT(Report(*s).persisted_index_rejected,
                 Catch::Contains("version"));
    }
    CheckModel(*s, m);
  }
}

int FailFallocate(io::Op op, void*) {
  return op == io::Op::kFallocate ? ENOSPC : 0;
}

TEST_CASE("persisted index: Close() returns a failed index update", "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  std::vector<absl::Status> seen;
  Options o = IndexOptions();
  o.on_background_error = [&](const absl::Status& s) { seen.push_back(s); };
  {
    auto s = OpenOrDie(path, o);
    Fill(*s, m, 2000, 13);
    CHECK(s->Close().ok());  // the index written
    CHECK(s->Close().ok());  // once closed, nothing more to do
  }
  CHECK(seen.empty());
  REQUIRE(std::filesystem::remove(IndexPathFor(path)));
  auto s = OpenOrDie(path, o);
  Fill(*s, m, 10, 14);  // into the region it claimed: no new allocation
  io::SetFaultHook(&FailFallocate, nullptr);
  const absl::Status closed = s->Close();
  io::SetFaultHook(nullptr, nullptr);
  CHECK(closed.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(
      std::string(closed.message()),
      Catch::Contains(".idx: index file not updated (the log is intact)"));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].code() == absl::StatusCode::kResourceExhausted);
  CHECK(s->Close().ok());  // the failure is returned once
  s.reset();
  CHECK_FALSE(std::filesystem::exists(IndexPathFor(path)));
  CHECK_FALSE(std::filesystem::exists(IndexPathFor(path) + ".tmp"));
  auto again = OpenOrDie(path, IndexOptions());
  CHECK_FALSE(Report(*again).persisted_index_used);
  CheckModel(*again, m);
}

}  // namespace
}  // namespace recmap
