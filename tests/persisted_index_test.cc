// The persisted offset index ("<store>.idx"): written at a clean close,
// mapped at open instead of rescanning the log, and never trusted when it
// does not describe the log: damaged, truncated, another store's, newer
// than the store, naming a reformatted region, or pointing at the wrong
// record. In every case every Get returns what the model says.
#include "persisted_index.h"

#include <xxhash.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "coding.h"
#include "index_model.h"
#include "offset_index.h"
#include "recmap/store.h"
#include "store_rep.h"
#include "test_util.h"

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
  Options o = testing::SmallOptions();
  o.persist_index_min_records = 0;
  o.persist_index_in_background = false;
  return o;
}

const RecoveryReport& Report(Store& s) { return s.rep()->recovery(); }

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

// Rewrites the store's index through PersistedIndex::Write (so that its
// checksum is right) after `edit` changed its regions or entries.
void Forge(const std::string& path,
           const std::function<void(std::vector<IndexedRegion>&,
                                    std::vector<OffsetIndex::Slot>&)>& edit) {
  std::array<uint8_t, 16> uuid;
  uint64_t region_size;
  {
    auto s = OpenOrDie(path, IndexOptions());
    uuid = s->info().uuid;
    region_size = s->info().region_size;
  }
  absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
      PersistedIndex::Load(IndexPathFor(path), uuid, region_size);
  REQUIRE(ix.ok());
  std::vector<IndexedRegion> regions = (*ix)->regions();
  std::vector<OffsetIndex::Slot> entries;
  (*ix)->ForEach([&](uint64_t id, uint64_t loc) {
    entries.push_back({id, loc});
  });
  const uint64_t max_seq = (*ix)->max_sequence();
  ix->reset();
  edit(regions, entries);
  REQUIRE(PersistedIndex::Write(IndexPathFor(path), uuid, region_size, max_seq,
                                regions, entries)
              .ok());
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
  SECTION("a covered tail past the durable tail") {
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
    std::vector<absl::StatusOr<std::string_view>> many;
    const uint64_t ids[] = {victim, victim};
    s->MultiGet(ids, &many);
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
    std::vector<absl::StatusOr<std::string_view>> many;
    const uint64_t ids[] = {victim};
    s->MultiGet(ids, &many);
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

TEST_CASE("persisted index: only the last writable handle writes it",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  auto first = OpenOrDie(path, IndexOptions());
  {
    auto second = OpenOrDie(path, IndexOptions());
    Fill(*second, m, 2000, 10);
  }
  CHECK_FALSE(std::filesystem::exists(IndexPathFor(path)));
  first.reset();
  CHECK(std::filesystem::exists(IndexPathFor(path)));
  auto s = OpenOrDie(path, IndexOptions());
  CHECK(Report(*s).persisted_index_used);
  CheckModel(*s, m);
}

TEST_CASE("persisted index: the builder merges in place", "[index]") {
  TempDir dir;
  const std::string path = dir.File("x.idx");
  std::array<uint8_t, 16> uuid{};
  uuid[3] = 7;
  constexpr uint64_t kSlots = 100;
  auto b = PersistedIndexBuilder::Create(path, uuid, 65536, 2, kSlots);
  REQUIRE(b.ok());
  // Put inserts or replaces; the table never fills its last slot.
  uint64_t put = 0;
  for (uint64_t id = 1; id <= kSlots; ++id) {
    if (!(*b)->Put(id * 31, id)) break;
    ++put;
  }
  CHECK(put == kSlots - 1);
  CHECK((*b)->entries() == kSlots - 1);
  CHECK_FALSE((*b)->Put(12345, 9));
  CHECK((*b)->Put(31, 777));  // replacing needs no free slot
  CHECK((*b)->entries() == kSlots - 1);
  CHECK((*b)->Find(31) == 777);
  CHECK((*b)->Find(62) == 2);
  CHECK((*b)->Find(32) == 0);
  std::vector<IndexedRegion> regions(2);
  regions[0] = {11, 8192 + 64, 2, 64, 0};
  regions[1] = {12, 8192, 0, 0, 0};
  CHECK((*b)->Finish(99, {regions[0]}).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  b = PersistedIndexBuilder::Create(path, uuid, 65536, 2, kSlots);
  REQUIRE(b.ok());
  REQUIRE((*b)->Put(5, 50));
  REQUIRE((*b)->Put(6, 60));
  REQUIRE((*b)->Finish(99, regions).ok());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  auto ix = PersistedIndex::Load(path, uuid, 65536);
  REQUIRE(ix.ok());
  CHECK((*ix)->entries() == 2);
  CHECK((*ix)->slots() == kSlots);
  CHECK((*ix)->Find(5) == 50);
  CHECK((*ix)->Find(6) == 60);
  CHECK((*ix)->Find(7) == 0);
  CHECK((*ix)->max_sequence() == 99);
  REQUIRE((*ix)->regions().size() == 2);
  CHECK((*ix)->regions()[0].epoch == 11);
  CHECK((*ix)->regions()[0].tail == 8192 + 64);
  CHECK((*ix)->regions()[1].tail == 8192);
  // Abandoned: no file left behind, the old one untouched.
  {
    auto c = PersistedIndexBuilder::Create(path, uuid, 65536, 1, 64);
    REQUIRE(c.ok());
    REQUIRE((*c)->Put(1, 2));
  }
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK(PersistedIndex::Load(path, uuid, 65536).ok());
}

// Sets the version field of the index file at `path` and fixes its
// checksum (docs/FORMAT.md: XXH3 over all but the last 8 bytes).
void SetVersion(const std::string& path, uint32_t version) {
  std::string f = ReadFile(path);
  REQUIRE(f.size() > 80);
  EncodeFixed32(f.data() + 8, version);
  EncodeFixed64(
      f.data() + f.size() - 8,
      XXH3_64bits_withSeed(f.data(), f.size() - 8, 0x726d6170696478ULL));
  WriteFile(path, f);
}

TEST_CASE("persisted index: versions 1 and 2 are read, others are not",
          "[index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  {
    auto s = OpenOrDie(path, IndexOptions());
    Fill(*s, m, 2000, 11);
  }
  const std::string written = ReadFile(IndexPathFor(path));
  CHECK(DecodeFixed32(written.data() + 8) == kIndexVersion);
  for (uint32_t v : {0u, 1u, 2u, 3u}) {
    WriteFile(IndexPathFor(path), written);
    SetVersion(IndexPathFor(path), v);
    Options o = IndexOptions();
    o.read_only = true;
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    INFO("version " << v);
    CHECK(Report(*s).persisted_index_used == (v == 1 || v == 2));
    if (v != 1 && v != 2) {
      CHECK_THAT(Report(*s).persisted_index_rejected,
                 Catch::Contains("version"));
    }
    CheckModel(*s, m);
  }
}

}  // namespace
}  // namespace recmap
