// Store::ForEachRecord with the verifier thread (scan_pipeline.cc) must
// deliver exactly what the single-threaded scan delivers: the same records
// in the same order, the same early stop, the same DataLoss for damage.
#include "scan_pipeline.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

constexpr uint64_t kAlways = 0;
constexpr uint64_t kNever = ~uint64_t{0};
constexpr ScanChecksums kAllSides[] = {
    ScanChecksums::kShared, ScanChecksums::kVerifier, ScanChecksums::kCaller};

struct Seen {
  uint64_t id;
  uint64_t sequence;
  RecordType type;
  std::string value;
  uint64_t file_offset;
  bool operator==(const Seen&) const = default;
};

Options ScanOptions(uint64_t min_bytes) {
  Options o = SmallOptions();  // 64 KiB regions: many regions, few records
  o.scan_verify_thread_min_bytes = min_bytes;
  return o;
}

// Writes `n` records: puts of ids cycling over n/3 (so ids are superseded),
// a delete every 7th, a Sync every 500 (each leaves a resume marker, which
// ForEachRecord must skip). Returns how many puts and deletes were written.
uint64_t Fill(Store& s, uint64_t n) {
  uint64_t written = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t id = 1 + i % (n / 3 + 1);
    if (i % 7 == 6) {
      REQUIRE(s.Delete(id).ok());
    } else {
      REQUIRE(s.Put(id, Payload(0, i)).ok());
    }
    ++written;
    if (i % 500 == 499) REQUIRE(s.Sync().ok());
  }
  return written;
}

// Scans with a fresh handle (options `o`), stopping after `limit` records.
absl::Status Scan(const std::string& path, const Options& o,
                  std::vector<Seen>* out, uint64_t limit = kNever) {
  auto s = OpenOrDie(path, o);
  out->clear();
  return s->ForEachRecord([&](const RecordView& v) {
    out->push_back({v.id, v.sequence, v.type, std::string(v.value),
                    v.location.file_offset});
    return out->size() < limit;
  });
}

TEST_CASE("pipelined scan delivers exactly the serial scan's records",
          "[scan_pipeline]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  uint64_t written;
  uint32_t regions;
  {
    auto s = OpenOrDie(path, ScanOptions(kNever));
    written = Fill(*s, 30000);
    regions = s->Stats().regions;
  }
  REQUIRE(regions > 20);  // regions change under both threads
  std::vector<Seen> serial, pipelined;
  REQUIRE(Scan(path, ScanOptions(kNever), &serial).ok());
  REQUIRE(Scan(path, ScanOptions(kAlways), &pipelined).ok());
  CHECK(serial.size() == written);
  CHECK(pipelined.size() == written);
  CHECK(pipelined == serial);
  // Log order: within each region, offsets increase.
  for (size_t i = 1; i < pipelined.size(); ++i)
    REQUIRE(pipelined[i].file_offset > pipelined[i - 1].file_offset);
}

TEST_CASE("pipelined scan stops exactly where the callback says",
          "[scan_pipeline]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  {
    auto s = OpenOrDie(path, ScanOptions(kNever));
    (void)Fill(*s, 20000);
  }
  std::vector<Seen> all;
  REQUIRE(Scan(path, ScanOptions(kNever), &all).ok());
  for (uint64_t limit : {1ul, 2ul, 255ul, 256ul, 257ul, 8191ul, 8192ul, 8193ul,
                         12345ul, all.size() - 1, all.size()}) {
    std::vector<Seen> got;
    REQUIRE(Scan(path, ScanOptions(kAlways), &got, limit).ok());
    REQUIRE(got.size() == limit);
    CHECK(std::equal(got.begin(), got.end(), all.begin()));
  }
}

TEST_CASE("the caller skips exactly the checksums the verifier did",
          "[scan_pipeline]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Options o = ScanOptions(kAlways);
  o.region_size = 1 << 20;  // records pass kMaxLead ahead within a region
  uint64_t written;
  {
    auto s = OpenOrDie(path, o);
    written = Fill(*s, 60000);
  }
  auto s = OpenOrDie(path, o);
  StoreRep& rep = StorePeer::Rep(*s);
  REQUIRE(rep.Refresh().ok());
  const uint32_t n = rep.known_regions();
  uint64_t examined = 0;  // every record a scan checks, resume markers too
  for (uint32_t i = 0; i < n; ++i) {
    REQUIRE(s->ForEachInRegion(i, [&](const RecordView&) {
               ++examined;
               return true;
             }).ok());
  }
  REQUIRE(examined > written);  // there are markers
  for (ScanChecksums side : kAllSides) {
    CAPTURE(static_cast<int>(side));
    uint64_t delivered = 0, trusted = 0;
    REQUIRE(ForEachRecordPipelined(
                rep, n,
                [&](const RecordView&) {
                  ++delivered;
                  return true;
                },
                side, &trusted)
                .ok());
    CHECK(delivered == written);
    if (side == ScanChecksums::kCaller) CHECK(trusted == 0);
    // Every record, resume markers too, was the verifier's.
    if (side == ScanChecksums::kVerifier) CHECK(trusted == examined);
    CHECK(trusted <= examined);
  }
}

TEST_CASE("a slow callback makes the verifier wait, and loses nothing",
          "[scan_pipeline]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  uint64_t written;
  {
    auto s = OpenOrDie(path, ScanOptions(kNever));
    written = Fill(*s, 40000);
  }
  auto s = OpenOrDie(path, ScanOptions(kAlways));
  uint64_t count = 0, last_sequence_sum = 0;
  REQUIRE(s->ForEachRecord([&](const RecordView& v) {
             // Far slower than verifying: the verifier runs 1 MiB ahead
             // and waits.
             if (++count % 4000 == 0)
               std::this_thread::sleep_for(std::chrono::milliseconds(20));
             last_sequence_sum += v.sequence;
             return true;
           }).ok());
  CHECK(count == written);
  // Every sequence 1..written appears exactly once (all records are kept).
  CHECK(last_sequence_sum == written * (written + 1) / 2);
}

// Overwrites one payload byte of the record `id` resolves to, through the
// file (the mapping shares the page cache): damage after open, as bit rot
// under a running process would be. Returns the record's file offset.
uint64_t DamageRecordOf(Store& s, const std::string& path, uint64_t id) {
  absl::StatusOr<RecordView> v = s.GetRecord(id);
  REQUIRE(v.ok());
  REQUIRE(v->value.size() > 4);
  const char flipped = static_cast<char>(v->value[3] ^ 0x5a);
  const uint64_t at = v->location.file_offset + 32 + 3;
  int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, &flipped, 1, static_cast<off_t>(at)) == 1);
  ::close(fd);
  return v->location.file_offset;
}

// Both scans over the same handle, so they meet the same bytes.
struct BothScans {
  std::vector<Seen> serial, pipelined;
  absl::Status serial_status, pipelined_status;
};
BothScans ScanBoth(Store& s, ScanChecksums checksums) {
  BothScans b;
  StoreRep& rep = StorePeer::Rep(s);
  REQUIRE(rep.Refresh().ok());
  const uint32_t n = rep.known_regions();
  auto collect = [](std::vector<Seen>* out) {
    return [out](const RecordView& v) {
      out->push_back({v.id, v.sequence, v.type, std::string(v.value),
                      v.location.file_offset});
      return true;
    };
  };
  b.serial_status = ForEachRecordSerial(rep, n, collect(&b.serial));
  b.pipelined_status =
      ForEachRecordPipelined(rep, n, collect(&b.pipelined), checksums);
  return b;
}

TEST_CASE(
    "damage: the pipelined scan delivers the records before it, then "
    "the serial scan's DataLoss",
    "[scan_pipeline]") {
  const std::pair<uint64_t, ScanChecksums> kCases[] = {
      {1, ScanChecksums::kVerifier},    {2999, ScanChecksums::kVerifier},
      {6000, ScanChecksums::kVerifier}, {1, ScanChecksums::kCaller},
      {2999, ScanChecksums::kCaller},   {6000, ScanChecksums::kCaller},
      {2999, ScanChecksums::kShared}};
  for (auto [victim, side] : kCases) {
    CAPTURE(victim, static_cast<int>(side));
    TempDir dir;
    const std::string path = dir.File("s.rmap");
    auto s = OpenOrDie(path, ScanOptions(kNever));
    for (uint64_t id = 1; id <= 6000; ++id)
      REQUIRE(s->Put(id, Payload(1, id)).ok());
    const uint64_t at = DamageRecordOf(*s, path, victim);
    BothScans b = ScanBoth(*s, side);
    // One writer wrote ids 1..6000 in order: log order is id order.
    CHECK(b.serial.size() == victim - 1);
    CHECK(b.pipelined == b.serial);
    REQUIRE(b.serial_status.code() == absl::StatusCode::kDataLoss);
    CHECK(b.pipelined_status == b.serial_status);
    CHECK(std::string(b.pipelined_status.message())
              .find("checksum mismatch at file offset " + std::to_string(at)) !=
          std::string::npos);
  }
}

TEST_CASE("salvage mode: the pipelined scan skips the damaged record too",
          "[scan_pipeline]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  {
    auto s = OpenOrDie(path, ScanOptions(kNever));
    for (uint64_t id = 1; id <= 6000; ++id)
      REQUIRE(s->Put(id, Payload(1, id)).ok());
  }
  Options o = ScanOptions(kNever);
  o.recovery_mode = RecoveryMode::kSalvage;
  auto s = OpenOrDie(path, o);
  (void)DamageRecordOf(*s, path, 3000);
  for (ScanChecksums side : kAllSides) {
    CAPTURE(static_cast<int>(side));
    BothScans b = ScanBoth(*s, side);
    REQUIRE(b.serial_status.ok());
    REQUIRE(b.pipelined_status.ok());
    CHECK(b.serial.size() == 5999);
    CHECK(b.pipelined == b.serial);
    for (const Seen& r : b.pipelined) REQUIRE(r.id != 3000);
  }
}

TEST_CASE("pipelined scans beside a live writer see valid, growing prefixes",
          "[scan_pipeline]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  auto s = OpenOrDie(path, ScanOptions(kAlways));
  constexpr uint64_t kRecords = 30000;
  std::atomic<uint64_t> appended{0};
  std::string writer_error;  // read after join; Catch2 asserts on one thread
  std::thread writer([&] {
    absl::StatusOr<std::unique_ptr<Writer>> w = s->NewWriter();
    if (!w.ok()) {
      writer_error = w.status().ToString();
      appended.store(kRecords, std::memory_order_release);
      return;
    }
    for (uint64_t i = 0; i < kRecords; ++i) {
      absl::StatusOr<uint64_t> id = (*w)->Append(Payload(2, i));
      if (!id.ok() || *id != i + 1) {
        writer_error =
            id.ok() ? "id " + std::to_string(*id) : id.status().ToString();
        appended.store(kRecords, std::memory_order_release);
        return;
      }
      appended.store(i + 1, std::memory_order_release);
    }
  });
  uint64_t scans = 0, previous = 0;
  bool writer_done = false;
  while (!writer_done) {
    writer_done = appended.load(std::memory_order_acquire) == kRecords;
    const uint64_t floor = appended.load(std::memory_order_acquire);
    uint64_t count = 0, bad = 0;
    REQUIRE(s->ForEachRecord([&](const RecordView& v) {
               // Append ids are sequences: 1, 2, ... from one writer.
               if (v.id != count + 1 || v.value != Payload(2, v.id - 1)) ++bad;
               ++count;
               return true;
             }).ok());
    CHECK(bad == 0);
    CHECK(count >= floor);     // every published record is seen
    CHECK(count >= previous);  // and the log only grows
    previous = count;
    ++scans;
  }
  writer.join();
  REQUIRE(writer_error.empty());
  CHECK(previous == kRecords);  // the last scan began after the last append
  CHECK(scans >= 1);
}

}  // namespace
}  // namespace recmap
