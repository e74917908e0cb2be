// kill -9 torture, after RocksDB's crash test: four writer processes append
// records of 0..64 KiB, each logging every acknowledged Put to an
// expected-state file (O_APPEND, survives the kill); the parent SIGKILLs them
// at random instants, then opens the store and checks that
//   - every acknowledged record is there with its sequence and bytes,
//   - no record returned is corrupt (every payload is derivable from its id),
//   - every region is a clean prefix: no valid record past the end of the
//     recovered log, and each writer's records form an unbroken run.
// One cycle in three kills one writer while the others keep writing, checks
// the dead writer's records from a live (non-recovering) open, and starts a
// replacement that claims the dead writer's region.
// CI: 1,000 cycles. RECMAP_SOAK=1: 10,000 cycles. RECMAP_CRASH_SCALE=P: P%
// of 1,000 (the sanitizer stage). RECMAP_CYCLES=N: exactly N.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "coding.h"
#include "crash/crash_util.h"
#include "recmap/store.h"
#include "region.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

#define NOTE(msg) CRASH_NOTE("kill9", msg)

// 64 bytes: a divisor of the page size, so that no entry straddles a page.
// A write() killed by SIGKILL can stop between pages (the kernel checks for
// fatal signals there), which would leave a partial entry and shift every
// later one; within one page the copy is all or nothing. Each entry also
// carries a checksum, and the reader resynchronises past a bad one.
constexpr size_t kEntrySize = 64;
constexpr int kWriters = 4;

// One acknowledged Put, as logged by the writer that made it.
struct Entry {
  uint32_t slot = 0;
  uint32_t cycle = 0;
  uint64_t i = 0;
  uint64_t id = 0;
  uint64_t seq = 0;
  uint64_t len = 0;
  uint64_t hash = 0;
};

uint64_t MakeId(uint32_t cycle, uint32_t slot, uint64_t i) {
  return uint64_t{cycle} << 32 | uint64_t{slot} << 28 | i;
}

void EncodeEntry(const Entry& e, char* buf) {
  EncodeFixed32(buf, e.slot);
  EncodeFixed32(buf + 4, e.cycle);
  EncodeFixed64(buf + 8, e.i);
  EncodeFixed64(buf + 16, e.id);
  EncodeFixed64(buf + 24, e.seq);
  EncodeFixed32(buf + 32, static_cast<uint32_t>(e.len));
  EncodeFixed32(buf + 36, 0);
  EncodeFixed64(buf + 40, e.hash);
  std::memset(buf + 48, 0, 8);
  EncodeFixed64(buf + 56, XXH3_64bits(buf, 56));
}

std::vector<Entry> ReadEntries(const std::string& path,
                               uint64_t* torn = nullptr) {
  std::string data = ReadFile(path);
  std::vector<Entry> out;
  for (size_t off = 0; off + kEntrySize <= data.size(); off += kEntrySize) {
    const char* b = data.data() + off;
    if (DecodeFixed64(b + 56) != XXH3_64bits(b, 56)) {
      if (torn != nullptr) ++*torn;
      off = off + 1 - kEntrySize;  // resync on the next byte
      continue;
    }
    Entry e;
    e.slot = DecodeFixed32(b);
    e.cycle = DecodeFixed32(b + 4);
    e.i = DecodeFixed64(b + 8);
    e.id = DecodeFixed64(b + 16);
    e.seq = DecodeFixed64(b + 24);
    e.len = DecodeFixed32(b + 32);
    e.hash = DecodeFixed64(b + 40);
    out.push_back(e);
  }
  return out;
}

// The child: writes until killed (or until `max_records`). Exit codes other
// than 0 mean the store misbehaved.
int RunWriter(const std::string& path, const std::string& expected,
              uint32_t cycle, uint32_t slot, uint64_t seed) {
  Options o;
  o.max_file_size = uint64_t{1} << 36;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(path, o);
  if (!store.ok()) {
    std::fprintf(stderr, "writer %u: open: %s\n", slot,
                 store.status().ToString().c_str());
    return 2;
  }
  int fd =
      ::open(expected.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return 3;
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < (uint64_t{1} << 20); ++i) {
    const uint64_t id = MakeId(cycle, slot, i);
    const std::string v = PayloadFor(id);
    if (absl::Status s = (*store)->Put(id, v); !s.ok()) {
      std::fprintf(stderr, "writer %u: put: %s\n", slot, s.ToString().c_str());
      return 4;
    }
    absl::StatusOr<RecordView> rv = (*store)->GetRecord(id);
    if (!rv.ok() || rv->value != v) {
      std::fprintf(stderr, "writer %u: read back id %llu failed\n", slot,
                   static_cast<unsigned long long>(id));
      return 5;
    }
    Entry e{slot, cycle, i, id, rv->sequence, v.size(), HashBytes(v)};
    char buf[kEntrySize];
    EncodeEntry(e, buf);
    if (::write(fd, buf, kEntrySize) != static_cast<ssize_t>(kEntrySize))
      return 6;
    // Now and then a Sync(), so that page closing and resume markers are
    // written (and killed) too.
    if (rng() % 256 == 0) {
      if (absl::Status s = (*store)->Sync(); !s.ok()) return 7;
    }
  }
  return 0;
}

struct Figures {
  uint64_t cycles = 0;
  uint64_t one_killed_cycles = 0;
  uint64_t records_checked = 0;  // acknowledged records looked up
  uint64_t records_scanned = 0;  // records read back by region scans
  uint64_t lost = 0;
  uint64_t corrupt = 0;
  uint64_t prefix_violations = 0;
  uint64_t open_failures = 0;
  uint64_t writer_errors = 0;
  uint64_t live_checks = 0;
  uint64_t torn_entries = 0;  // expected-state entries cut by the kill
};

// Valid records (of any type) at any 8-aligned offset in [from, end of
// region): after recovery there must be none.
uint64_t ValidRecordsFrom(const RegionRef& r, uint64_t from) {
  uint64_t found = 0;
  for (uint64_t pos = from; pos + kRecordHeaderSize <= r.size;) {
    if (DecodeFixed64(r.base + pos) == 0) {
      pos += 8;
      continue;
    }
    ScannedRecord rec;
    if (CheckRecordAt(r, pos, r.size, &rec) == ScanStop::kLimit) {
      found++;
      pos += RecordSize(rec.header.length);
    } else {
      pos += 8;
    }
  }
  return found;
}

// Checks the store against the acknowledged entries. `live`: writers are
// running (read-only open, no recovery past the committed tails); the scans
// are then no snapshot, so runs are checked only for `dead_writer`
// (cycle << 4 | slot), whose records no longer change.
void Verify(const std::string& path, const std::vector<Entry>& entries,
            bool live, uint64_t dead_writer,
            absl::flat_hash_map<uint64_t, uint64_t>* verified, Figures* f) {
  Options o;
  o.read_only = live;
  o.max_file_size = uint64_t{1} << 36;
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(path, o);
  if (!opened.ok()) {
    f->open_failures++;
    NOTE("open failed: " << opened.status().ToString());
    return;
  }
  Store& store = **opened;
  StoreRep* rep = &StorePeer::Rep(store);
  // id -> sequence of every record the scans return; and the indexes of
  // each writer's records, to find breaks in a run.
  absl::flat_hash_map<uint64_t, uint64_t> present;
  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> runs;
  const StoreStats stats = store.Stats();
  for (uint32_t r = 0; r < stats.regions; ++r) {
    absl::Status s = store.ForEachInRegion(r, [&](const RecordView& v) {
      if (v.type == RecordType::kPadding) return true;
      f->records_scanned++;
      // Payloads are compared in full once per record; afterwards the
      // checksum (verified by the scan) and the sequence vouch for it.
      auto known = verified->find(v.id);
      const bool seen = known != verified->end() && known->second == v.sequence;
      if (v.type != RecordType::kPut ||
          (!seen && !PayloadMatches(v.id, v.value))) {
        f->corrupt++;
        NOTE("corrupt record id " << v.id << " at " << v.location.file_offset);
        return true;
      }
      present[v.id] = v.sequence;
      if (!seen && !live) (*verified)[v.id] = v.sequence;
      runs[v.id >> 28].push_back(v.id & ((uint64_t{1} << 28) - 1));
      return true;
    });
    if (!s.ok()) {
      f->prefix_violations++;
      NOTE("region " << r << ": " << s.ToString());
    }
    if (live) continue;
    // Nothing valid may follow the end of the recovered log.
    StoreRep::RegionInfo& ri = rep->region(r);
    if (!ri.formatted) continue;
    const uint64_t end = ri.indexed_end.load();
    const uint64_t beyond = ValidRecordsFrom(ri.ref, end);
    if (beyond != 0) {
      f->prefix_violations += beyond;
      NOTE("region " << r << ": " << beyond
                     << " valid records past the log end " << end);
    }
  }
  for (auto& [writer, idx] : runs) {
    if (live && writer != dead_writer) continue;
    std::sort(idx.begin(), idx.end());
    for (size_t k = 0; k < idx.size(); ++k) {
      if (idx[k] != k) {
        f->prefix_violations++;
        NOTE("writer " << writer << ": record " << k << " missing before "
                       << idx[k]);
        break;
      }
    }
  }
  for (const Entry& e : entries) {
    f->records_checked++;
    auto it = present.find(e.id);
    if (it == present.end()) {
      f->lost++;
      NOTE("acknowledged id " << e.id << " lost");
      continue;
    }
    absl::StatusOr<RecordView> rv = store.GetRecord(e.id);
    if (it->second != e.seq || !rv.ok() || rv->sequence != e.seq ||
        rv->value.size() != e.len) {
      f->corrupt++;
      NOTE("acknowledged id " << e.id << " differs");
    }
  }
}

std::string ScratchBase() {
  // Process crashes do not depend on the file system: use tmpfs when there
  // is one, to spare the disk gigabytes of writes.
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0')
    return t;
  struct stat st;
  if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) return "/dev/shm";
  return "/tmp";
}

void SleepMicros(uint64_t us) {
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

TEST_CASE("kill -9 torture: 4 writer processes, random SIGKILL",
          "[crash][kill9]") {
  const uint64_t cycles =
      std::getenv("RECMAP_CYCLES")
          ? std::strtoull(std::getenv("RECMAP_CYCLES"), nullptr, 10)
          : ScaledCount(1000);
  const uint64_t seed =
      std::getenv("RECMAP_SEED")
          ? std::strtoull(std::getenv("RECMAP_SEED"), nullptr, 10)
          : static_cast<uint64_t>(
                std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("kill9 torture: seed %llu (RECMAP_SEED to replay)\n",
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  const uint64_t kRegionSizes[] = {uint64_t{1} << 20, 256 << 10, 96 << 10};
  constexpr uint64_t kCyclesPerStore = 12;
  constexpr uint64_t kMaxStoreBytes = uint64_t{48} << 20;

  char tmpl[4096];
  std::snprintf(tmpl, sizeof(tmpl), "%s/recmap-kill9-XXXXXX",
                ScratchBase().c_str());
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  std::string path, expected;
  Figures f;
  uint64_t store_cycles = kCyclesPerStore;
  absl::flat_hash_map<uint64_t, uint64_t> verified;  // id -> sequence

  for (uint32_t cycle = 1; cycle <= cycles; ++cycle) {
    struct stat st;
    if (store_cycles >= kCyclesPerStore ||
        (::stat(path.c_str(), &st) == 0 &&
         static_cast<uint64_t>(st.st_size) > kMaxStoreBytes)) {
      std::filesystem::remove_all(dir + "/s");
      std::filesystem::create_directory(dir + "/s");
      path = dir + "/s/store.rmap";
      expected = dir + "/s/expected";
      Options o;
      o.create_if_missing = true;
      o.region_size = kRegionSizes[rng() % 3];
      REQUIRE(Store::Open(path, o).ok());
      store_cycles = 0;
      verified.clear();
    }
    store_cycles++;
    f.cycles++;
    std::vector<pid_t> pids;
    for (uint32_t w = 0; w < kWriters; ++w) {
      const uint64_t s = rng();
      pids.push_back(ForkChild(
          [&, w, s] { return RunWriter(path, expected, cycle, w, s); }));
    }
    const bool one_killed = rng() % 3 == 0;
    SleepMicros(300 + rng() % 4000);
    if (one_killed) {
      f.one_killed_cycles++;
      const uint32_t victim = static_cast<uint32_t>(rng() % kWriters);
      ::kill(pids[victim], SIGKILL);
      const int rc = WaitChild(pids[victim]);
      if (rc != 128 + SIGKILL) f.writer_errors++;
      // The others are still writing: a live open must already see every
      // record the dead writer acknowledged (and everyone else's so far).
      std::vector<Entry> entries = ReadEntries(expected);
      Verify(path, entries, /*live=*/true, uint64_t{cycle} << 4 | victim,
             &verified, &f);
      f.live_checks++;
      // A replacement claims a free region, likely the dead writer's.
      const uint64_t s = rng();
      pids[victim] = ForkChild([&, victim, s] {
        return RunWriter(path, expected, cycle, kWriters + victim, s);
      });
      SleepMicros(300 + rng() % 2000);
    }
    std::vector<size_t> order(pids.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t k : order) {
      ::kill(pids[k], SIGKILL);
      if (rng() % 2) SleepMicros(rng() % 1000);
    }
    for (pid_t p : pids) {
      const int rc = WaitChild(p);
      if (rc != 128 + SIGKILL && rc != 0) {
        f.writer_errors++;
        NOTE("cycle " << cycle << ": writer exit code " << rc);
      }
    }
    Verify(path, ReadEntries(expected, &f.torn_entries), /*live=*/false, 0,
           &verified, &f);
    if (f.lost + f.corrupt + f.prefix_violations + f.open_failures +
            f.writer_errors !=
        0) {
      NOTE("failed at cycle " << cycle << ", seed " << seed);
      break;
    }
  }
  std::filesystem::remove_all(dir);
  RECMAP_FIGURES(
      "kill9_torture: cycles=%llu one_killed_live_cycles=%llu "
      "acknowledged_checked=%llu records_scanned=%llu lost=%llu corrupt=%llu "
      "prefix_violations=%llu open_failures=%llu writer_errors=%llu "
      "torn_expected_entries=%llu",
      (unsigned long long)f.cycles, (unsigned long long)f.one_killed_cycles,
      (unsigned long long)f.records_checked,
      (unsigned long long)f.records_scanned, (unsigned long long)f.lost,
      (unsigned long long)f.corrupt, (unsigned long long)f.prefix_violations,
      (unsigned long long)f.open_failures, (unsigned long long)f.writer_errors,
      (unsigned long long)f.torn_entries);
  CHECK(f.cycles == cycles);
  CHECK(f.records_checked > 0);
  CHECK(f.lost == 0);
  CHECK(f.corrupt == 0);
  CHECK(f.prefix_violations == 0);
  CHECK(f.open_failures == 0);
  CHECK(f.writer_errors == 0);
}

}  // namespace
}  // namespace recmap::testing
