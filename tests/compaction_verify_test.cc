// Compaction's checks: a copy that does not match the original -- though
// it is a well-formed store -- makes Compact fail with DataLoss naming the
// difference, removes the copy and leaves the original in place. The copy
// is altered between its directory sync and its verification (the
// kDirSynced step hook), with valid checksums, so only the comparison with
// the original can catch it. And a persisted index that passed its own
// checks but names the wrong records is never copied from.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "coding.h"
#include "compaction.h"
#include "format.h"
#include "persisted_index.h"
#include "recmap/compaction.h"
#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

// 300 ids, two versions each, every 10th deleted: 270 live records.
void Fill(const std::string& path) {
  auto s = OpenOrDie(path, SmallOptions());
  for (int round = 0; round < 2; ++round) {
    for (uint64_t id = 0; id < 300; ++id) {
      REQUIRE(s->Put(id, Payload(round, id)).ok());
    }
  }
  for (uint64_t id = 0; id < 300; id += 10) REQUIRE(s->Delete(id).ok());
}

// Rewrites the record of `id` in the store at `path` in place through a
// writable mapping, letting `edit` change its header fields or payload, and
// re-seals it with a valid checksum.
void RewriteRecord(const std::string& path, uint64_t id,
                   const std::function<void(RecordHeader&, char*)>& edit) {
  Options o = SmallOptions();
  o.create_if_missing = false;
  auto s = OpenOrDie(path, o);
  absl::StatusOr<RecordView> v = s->GetRecord(id);
  REQUIRE(v.ok());
  StoreRep* rep = &StorePeer::Rep(*s);
  const RegionRef& ref = rep->region(v->location.region).ref;
  char* p = ref.base +
            (v->location.file_offset - rep->RegionOffset(v->location.region));
  RecordHeader h;
  REQUIRE(h.DecodeFrom(p));
  edit(h, p + kRecordHeaderSize);
  h.EncodeTo(p);
  EncodeFixed64(p + kRecordChecksumOffset,
                RecordChecksum(p, h.length, ref.seed));
}

// Runs a compaction whose copy `alter` changes before verification; checks
// that it fails with DataLoss whose message contains `expect`, removes the
// copy, and leaves the original byte for byte; then that a compaction left
// alone succeeds.
void ExpectCaught(const std::function<void(const std::string&)>& alter,
                  const std::string& expect) {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  const std::string tmp = path + ".compact-tmp";
  Fill(path);
  const std::string orig = testing::ReadFile(path);
  bool altered = false;
  auto step_hook = [&](CompactionStep step) {
    if (step != CompactionStep::kDirSynced) return;
    alter(tmp);
    altered = true;
  };
  absl::StatusOr<CompactionResult> r =
      Compact(path, CompactionOptions(), step_hook);
  REQUIRE(altered);
  REQUIRE(absl::IsDataLoss(r.status()));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains(expect));
  CHECK(::access(tmp.c_str(), F_OK) != 0);
  CHECK(testing::ReadFile(path) == orig);
  absl::StatusOr<CompactionResult> again = Compact(path, CompactionOptions());
  REQUIRE(again.ok());
  CHECK(again->records_kept == 270);
}

TEST_CASE("compaction verification catches a value that differs") {
  ExpectCaught(
      [](const std::string& tmp) {
        RewriteRecord(tmp, 77, [](RecordHeader& h, char* payload) {
          REQUIRE(h.length > 0);
          payload[h.length - 1] ^= 0x20;
        });
      },
      "differs from the original at id 77");
}

TEST_CASE("compaction verification catches a sequence that differs") {
  ExpectCaught(
      [](const std::string& tmp) {
        // Past every sequence in the store: the copy stays a valid store.
        RewriteRecord(tmp, 123,
                      [](RecordHeader& h, char*) { h.sequence += 1000000; });
      },
      "different sequence");
}

TEST_CASE("compaction verification catches a record the copy should not hold") {
  ExpectCaught(
      [](const std::string& tmp) {
        Options o = SmallOptions();
        o.create_if_missing = false;
        auto s = OpenOrDie(tmp, o);
        // A newer version of a live id: the copy's set of ids is unchanged.
        REQUIRE(s->Put(5, "not in the original").ok());
      },
      "holds more than the 270 live records");
}

TEST_CASE("compaction verification catches a copy with a deleted id") {
  ExpectCaught(
      [](const std::string& tmp) {
        Options o = SmallOptions();
        o.create_if_missing = false;
        auto s = OpenOrDie(tmp, o);
        REQUIRE(s->Delete(11).ok());
      },
      "compacted copy holds");
}

TEST_CASE("compaction refuses a persisted index that names other records") {
  TempDir dir;
  const std::string path = dir.File("c.rmap");
  SetTuningForTesting({.persist_index_min_records = 0});
  Options o = SmallOptions();
  o.persist_index_in_background = false;  // written at the clean close
  {
    auto s = OpenOrDie(path, o);
    for (int round = 0; round < 2; ++round) {
      for (uint64_t id = 0; id < 300; ++id)
        REQUIRE(s->Put(id, Payload(round, id)).ok());
    }
  }
  // Rewrite the index file with its checksum intact but two entries'
  // locations swapped: it still covers the log, so the open trusts it.
  std::array<uint8_t, 16> uuid;
  uint64_t region_size;
  {
    auto s = OpenOrDie(path, o);
    uuid = s->info().uuid;
    region_size = s->info().region_size;
  }
  std::vector<OffsetIndex::Slot> entries;
  {
    absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
        PersistedIndex::Load(IndexPathFor(path), uuid, region_size);
    REQUIRE(ix.ok());
    (*ix)->ForEach([&](uint64_t id, uint64_t loc) {
      entries.push_back({id, loc});
    });
  }
  REQUIRE(entries.size() == 300);
  {
    absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
        PersistedIndexWriter::Open(IndexPathFor(path), uuid, region_size);
    REQUIRE(w.ok());
    auto always = [](uint64_t) { return true; };
    (*w)->BeginUpdate(0);
    (*w)->Upsert(entries[0].id, entries[1].location, always);
    (*w)->Upsert(entries[1].id, entries[0].location, always);
    (*w)->EndUpdate();
  }
  const std::string orig = testing::ReadFile(path);

  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  REQUIRE(absl::IsDataLoss(r.status()));
  CHECK_THAT(std::string(r.status().message()),
             Catch::Contains(".idx: the persisted index entry for id " +
                             std::to_string(entries[0].id)) ||
                 Catch::Contains(".idx: the persisted index entry for id " +
                                 std::to_string(entries[1].id)));
  CHECK(testing::ReadFile(path) == orig);
  CHECK(::access((path + ".compact-tmp").c_str(), F_OK) != 0);
  // Without the file, the index is rebuilt from the log and compaction
  // keeps every id's latest value.
  REQUIRE(::unlink(IndexPathFor(path).c_str()) == 0);
  r = Compact(path, CompactionOptions());
  REQUIRE(r.ok());
  CHECK(r->records_kept == 300);
  Options ro = SmallOptions();
  ro.create_if_missing = false;
  auto s = OpenOrDie(path, ro);
  for (uint64_t id = 0; id < 300; ++id) CHECK(*s->Get(id) == Payload(1, id));
}

}  // namespace
}  // namespace recmap
