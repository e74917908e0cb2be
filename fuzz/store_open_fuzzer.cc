// Fuzzes opening a store file: the input's bytes become a store file, which
// is opened read-only and writable (each on its own copy) in every recovery
// mode. Whatever opens is read through every path -- ForEachLive,
// ForEachInRegion for each region, Get of every live id, Stats -- and a
// writable handle also writes, reopens and reads back. VerifyStore (fsck)
// runs on the read-only copy.
//
// Input: flags u8 | [index_size u32 | index bytes] | file bytes. Flag bit 0
// rewrites every checksum in the image (and the index file's) first
// (fuzz_util.h, RepairChecksums) so that mutations reach recovery and
// indexing; bit 1 sets verify_checksums_on_read; bits 2-3 are ignored
// (inputs of the corpus may have them set); bit 4 says
// an index file follows (written beside the store as "<store>.idx", so the
// fuzzer mutates the persisted index and the log together).
//
// With an index file, each record a read-only open returns through Get or
// ForEachLive must be one a full scan of the log without the index (salvage
// mode) finds valid at the same offset: the index is a hint, never proof.
// Only when flag bit 0 forged the index's checksums may a returned record
// lie off the log's chain -- a record image inside another record's value
// verifies where it lies, and a forged entry can name it -- and then it must
// still verify there, byte for byte (VerifiesAlone): the index picks which
// record is returned, the record's own checksum vouches for its bytes.
//
// Invariants: a Status, never a crash, hang, leak or out-of-bounds access;
// error codes from the documented set; a read-only open never changes the
// file; the live set agrees with Get and Stats; a writable open that
// succeeded accepts a write, reopens in the same mode and keeps the same
// live records plus the new one; ForEachRecord delivers exactly the
// records of the regions' scans.
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "coding.h"
#include "fuzz_util.h"
#include "persisted_index.h"
#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "verify.h"

namespace recmap::fuzz {
namespace {

constexpr uint64_t kTestId = uint64_t{1} << 62;

struct Live {
  uint64_t sequence;
  std::string value;
};
using LiveSet = std::map<uint64_t, Live>;

bool DocumentedOpenError(const absl::Status& s) {
  return absl::IsDataLoss(s) || absl::IsFailedPrecondition(s) ||
         absl::IsInvalidArgument(s) || absl::IsResourceExhausted(s) ||
         absl::IsNotFound(s);
}

Options MakeOptions(RecoveryMode mode, bool read_only, bool verify) {
  Options o;
  o.read_only = read_only;
  o.recovery_mode = mode;
  o.verify_checksums_on_read = verify;
  o.max_file_size = uint64_t{4} << 20;  // also bounds growth
  return o;
}

std::string g_index;       // the index file of this input
bool g_has_index = false;  // whether there is one
bool g_forged = false;     // whether every checksum was rewritten (bit 0)

// Writes the store image and, if the input has one, its index file.
void WriteInputFiles(const std::string& path, const std::string& image) {
  WriteFileOrDie(path, image);
  if (g_has_index) WriteFileOrDie(path + ".idx", g_index);
}

// (file offset, id, sequence, type, value) of a record.
using RecordKey =
    std::tuple<uint64_t, uint64_t, uint64_t, RecordType, std::string>;
RecordKey KeyOf(const RecordView& v) {
  return {v.location.file_offset, v.id, v.sequence, v.type,
          std::string(v.value)};
}

// Every record that validates in the log at `path`, found by a salvage
// scan that ignores the index file.
bool ValidRecords(const std::string& path, std::set<RecordKey>* out) {
  Options o = MakeOptions(RecoveryMode::kSalvage, /*read_only=*/true, false);
  o.persist_index = false;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path, o);
  if (!store.ok()) return false;
  const uint32_t n = StorePeer::Rep(**store).known_regions();
  for (uint32_t i = 0; i < n; ++i) {
    (void)(*store)->ForEachInRegion(i, [&](const RecordView& v) {
      out->insert(KeyOf(v));
      return true;
    });
  }
  return true;
}

// Whether the record `v` verifies where it lies in the store file `image`:
// inside its region, its header and value as returned, its checksum that of
// its region's seed.
bool VerifiesAlone(const std::string& image, const RecordView& v) {
  if (image.size() < kFirstRegionOffset) return false;
  const uint64_t rs = DecodeFixed64(image.data() + 32);
  const uint64_t base = kFirstRegionOffset + uint64_t{v.location.region} * rs;
  const uint64_t off = v.location.file_offset;
  if (rs < kMinRegionSize || base + rs > image.size() ||
      off < base + kRegionDataOffset || off + kRecordHeaderSize > base + rs)
    return false;
  RecordHeader h;
  if (!h.DecodeFrom(image.data() + off) || h.id != v.id ||
      h.sequence != v.sequence || h.type != v.type ||
      h.length != v.value.size() || RecordSize(h.length) > base + rs - off ||
      image.compare(off + kRecordHeaderSize, h.length, v.value) != 0)
    return false;
  std::array<uint8_t, 16> uuid;
  std::memcpy(uuid.data(), image.data() + 16, 16);
  const uint64_t seed = RegionSeed(uuid, v.location.region,
                                   DecodeFixed64(image.data() + base + 8));
  return RecordChecksum(image.data() + off, h.length, seed) == h.checksum;
}

// Every record `store` returns by id or as live is a valid record of the
// log (`valid`), however it was located; with a forged index, one that
// verifies alone in `image`.
void CheckReturnedAreValid(Store* store, const std::set<RecordKey>& valid,
                           const std::string& image, bool forged) {
  auto ok = [&](const RecordView& v) {
    return valid.count(KeyOf(v)) != 0 || (forged && VerifiesAlone(image, v));
  };
  std::vector<uint64_t> ids;
  (void)store->ForEachLive([&](const RecordView& v) {
    FUZZ_CHECK(ok(v),
               absl::StrCat("ForEachLive returned a record at offset ",
                            v.location.file_offset, " that does not verify"));
    ids.push_back(v.id);
    return true;
  });
  // Ids the index may name even where the live scan stopped early.
  StorePeer::Rep(*store)
      .ForEachLatestLocation([&](uint64_t id, uint64_t) { ids.push_back(id); })
      .IgnoreError();
  for (uint64_t id : ids) {
    absl::StatusOr<RecordView> v = store->GetRecord(id);
    if (!v.ok()) continue;
    FUZZ_CHECK(v->id == id, "GetRecord returned another id's record");
    FUZZ_CHECK(ok(*v),
               absl::StrCat("GetRecord returned a record at offset ",
                            v->location.file_offset, " that does not verify"));
  }
}

// The index file's checksums (docs/FORMAT.md "Index file": the header's,
// each page's, the page sums') and its boot id, rewritten so that
// mutations of its contents reach the trust checks at open.
void RepairIndexChecksum(std::string* idx) {
  if (idx->size() < kIndexPageSize) return;
  char* p = idx->data();
  const uint64_t size = idx->size();
  const std::array<uint8_t, 16> boot = CurrentBootId();
  std::memcpy(p + kIxBootId, boot.data(), 16);
  const uint64_t slots = DecodeFixed64(p + kIxSlots);
  const uint64_t cap = DecodeFixed32(p + kIxRegionCapacity);
  if (slots <= size / kIndexSlotSize && cap <= size / kIndexRegionEntrySize) {
    const IndexLayout l = IndexLayout::For(cap, slots);
    if (l.file_size() == size) {
      char* sums = p + l.sum_offset();
      for (uint64_t k = 0; k < l.summed_pages(); ++k) {
        EncodeFixed64(
            sums + 8 * k,
            XXH3_64bits_withSeed(p + (1 + k) * kIndexPageSize, kIndexPageSize,
                                 kIndexChecksumSeed ^ (1 + k)));
      }
      EncodeFixed64(p + kIxSumsChecksum,
                    XXH3_64bits_withSeed(sums, l.sum_pages * kIndexPageSize,
                                         kIndexChecksumSeed));
    }
  }
  EncodeFixed64(p + kIxHeaderChecksum,
                XXH3_64bits_withSeed(p, kIxHeaderChecksum, kIndexChecksumSeed));
}

struct Scanned {
  uint64_t id, sequence, file_offset;
  RecordType type;
  std::string value;
  bool operator==(const Scanned&) const = default;
};

// ForEachRecord against ForEachInRegion per region: the same records
// (resume markers left out), in the same order, and OK or DataLoss.
void CheckFullScan(Store* store, uint32_t regions) {
  std::vector<Scanned> all, by_region;
  auto collect = [](std::vector<Scanned>* out) {
    return [out](const RecordView& v) {
      if (v.type == RecordType::kPadding) return true;
      out->push_back({v.id, v.sequence, v.location.file_offset, v.type,
                      std::string(v.value)});
      return true;
    };
  };
  absl::Status s = store->ForEachRecord(collect(&all));
  FUZZ_CHECK(s.ok() || absl::IsDataLoss(s), "ForEachRecord: " + s.ToString());
  if (!s.ok()) return;  // the regions' scans stop at the same damage
  for (uint32_t i = 0; i < regions; ++i) {
    if (!store->ForEachInRegion(i, collect(&by_region)).ok()) return;
  }
  FUZZ_CHECK(all == by_region,
             absl::StrCat("ForEachRecord gave ", all.size(),
                          " records, the regions' scans ", by_region.size(),
                          " (or different ones)"));
}

// Reads everything `store` holds through each read path and checks that
// the paths agree. Returns the live set.
// `complete`, if given, is set to whether ForEachLive read the whole live
// set (it stops with DataLoss on damage, e.g. a forged index entry).
LiveSet Exercise(Store* store, bool* complete = nullptr) {
  if (complete != nullptr) *complete = false;
  StoreStats st = store->Stats();
  FUZZ_CHECK(st.region_stats.size() == st.regions, "region stats count");
  for (uint32_t i = 0; i < st.regions; ++i) {
    uint64_t n = 0, last_offset = 0;
    absl::Status s = store->ForEachInRegion(i, [&](const RecordView& v) {
      FUZZ_CHECK(v.location.region == i, "record from another region");
      FUZZ_CHECK(n == 0 || v.location.file_offset > last_offset,
                 "region records out of log order");
      last_offset = v.location.file_offset;
      ++n;
      return true;
    });
    FUZZ_CHECK(s.ok() || absl::IsDataLoss(s),
               "ForEachInRegion: " + s.ToString());
  }
  CheckFullScan(store, st.regions);
  FUZZ_CHECK(absl::IsInvalidArgument(store->ForEachInRegion(
                 st.regions, [](const RecordView&) { return true; })),
             "ForEachInRegion accepted a region past the end");

  LiveSet live;
  uint64_t last_seq = 0;
  absl::Status s = store->ForEachLive([&](const RecordView& v) {
    FUZZ_CHECK(v.type == RecordType::kPut, "ForEachLive returned a non-put");
    // Non-decreasing, not increasing: an arbitrary file may give two ids
    // the same sequence number (each record valid on its own; a writer never
    // does it, and the store cannot tell which is wrong without a global
    // check). Each id still appears once, checked below.
    FUZZ_CHECK(v.sequence >= last_seq, "ForEachLive out of sequence order");
    last_seq = v.sequence;
    FUZZ_CHECK(live.count(v.id) == 0, "ForEachLive returned an id twice");
    live[v.id] = {v.sequence, std::string(v.value)};
    return true;
  });
  FUZZ_CHECK(s.ok() || absl::IsDataLoss(s), "ForEachLive: " + s.ToString());
  if (!s.ok()) return live;
  if (complete != nullptr) *complete = true;
  for (const auto& [id, rec] : live) {
    absl::StatusOr<RecordView> v = store->GetRecord(id);
    FUZZ_CHECK(
        v.ok() || absl::IsDataLoss(v.status()),
        absl::StrCat("Get of live id ", id, ": ", v.status().ToString()));
    if (!v.ok()) continue;
    FUZZ_CHECK(v->sequence == rec.sequence && v->value == rec.value,
               absl::StrCat("Get disagrees with ForEachLive for id ", id));
  }
  st = store->Stats();
  FUZZ_CHECK(st.live_records == live.size(),
             absl::StrCat("Stats live_records ", st.live_records,
                          " != ForEachLive count ", live.size()));
  return live;
}

void OpenReadOnly(const std::string& image, RecoveryMode mode, bool verify) {
  const std::string path = ScratchDir() + "/ro.rmap";
  WriteInputFiles(path, image);
  std::set<RecordKey> valid;
  const bool check_valid = g_has_index &&
                           mode == RecoveryMode::kTolerateTornTail &&
                           ValidRecords(path, &valid);
  {
    absl::StatusOr<std::unique_ptr<Store>> store =
        Store::Open(path, MakeOptions(mode, /*read_only=*/true, verify));
    if (!store.ok()) {
      FUZZ_CHECK(DocumentedOpenError(store.status()),
                 "read-only open: " + store.status().ToString());
    } else {
      Exercise(store->get());
      if (check_valid)
        CheckReturnedAreValid(store->get(), valid, image, g_forged);
      FUZZ_CHECK(absl::IsFailedPrecondition((*store)->Put(kTestId, "x")),
                 "a read-only store accepted a write");
    }
  }
  absl::StatusOr<VerifyReport> report = VerifyStore(path);
  FUZZ_CHECK(report.ok() || DocumentedOpenError(report.status()),
             "VerifyStore: " + report.status().ToString());
  FUZZ_CHECK(ReadFileOrDie(path) == image,
             "a read-only open or VerifyStore changed the file");
  if (g_has_index) {
    FUZZ_CHECK(ReadFileOrDie(path + ".idx") == g_index,
               "a read-only open or VerifyStore changed the index file");
  }
}

void OpenWritable(const std::string& image, RecoveryMode mode, bool verify) {
  const std::string path = ScratchDir() + "/rw.rmap";
  WriteInputFiles(path, image);
  const Options options = MakeOptions(mode, /*read_only=*/false, verify);
  LiveSet before;
  bool before_complete = false;
  {
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path, options);
    if (!store.ok()) {
      FUZZ_CHECK(DocumentedOpenError(store.status()),
                 "writable open: " + store.status().ToString());
      return;
    }
    before = Exercise(store->get(), &before_complete);
    absl::Status s = (*store)->Put(kTestId, "fuzz");
    FUZZ_CHECK(
        s.ok() || absl::IsResourceExhausted(s) || absl::IsInvalidArgument(s),
        "Put after a successful open: " + s.ToString());
    if (s.ok()) {
      absl::StatusOr<std::string_view> v = (*store)->Get(kTestId);
      FUZZ_CHECK(v.ok() && *v == "fuzz",
                 "a fresh Put does not read back: " +
                     (v.ok() ? "got \"" + std::string(*v) + "\""
                             : v.status().ToString()));
      before[kTestId] = {0, "fuzz"};
    }
  }
  absl::StatusOr<std::unique_ptr<Store>> again = Store::Open(path, options);
  FUZZ_CHECK(again.ok(),
             "a store recovered and written once does not reopen: " +
                 again.status().ToString());
  bool after_complete = false;
  LiveSet after = Exercise(again->get(), &after_complete);
  // Both live sets are known only if both scans read them whole.
  if (!before_complete || !after_complete) return;
  FUZZ_CHECK(after.size() == before.size(),
             absl::StrCat("reopen changed the live set: ", before.size(),
                          " -> ", after.size(), " records"));
  for (const auto& [id, rec] : before) {
    auto it = after.find(id);
    FUZZ_CHECK(it != after.end() && it->second.value == rec.value,
               absl::StrCat("reopen lost or changed id ", id));
  }
}

void Run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const uint8_t flags = data[0];
  ++data;
  --size;
  g_has_index = false;
  g_index.clear();
  if ((flags & 16) != 0 && size >= 4) {
    uint64_t n = uint64_t{data[0]} | uint64_t{data[1]} << 8 |
                 uint64_t{data[2]} << 16 | uint64_t{data[3]} << 24;
    data += 4;
    size -= 4;
    n = std::min<uint64_t>(n, size);
    g_index.assign(reinterpret_cast<const char*>(data), n);
    g_has_index = true;
    data += n;
    size -= n;
  }
  std::string image(reinterpret_cast<const char*>(data), size);
  g_forged = flags & 1;
  if (g_forged) {
    RepairChecksums(&image);
    if (g_has_index) RepairIndexChecksum(&g_index);
  }
  const bool verify = flags & 2;
  for (RecoveryMode mode :
       {RecoveryMode::kTolerateTornTail, RecoveryMode::kAbsoluteConsistency,
        RecoveryMode::kSalvage}) {
    OpenReadOnly(image, mode, verify);
    OpenWritable(image, mode, verify);
  }
  ClearScratchDir();
}

}  // namespace
}  // namespace recmap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  recmap::fuzz::Run(data, size);
  return 0;
}
