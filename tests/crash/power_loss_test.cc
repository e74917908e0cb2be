// Simulated power loss, after SQLite's crash test (src/test6.c): the disk
// holds the file as of the last fdatasync; at a crash every 4 KiB page (in
// the second mode, every 512-byte sector) that differs from that content is
// independently written (3/8), dropped (3/8) or replaced by garbage (1/4).
// Crash points: after every operation of a three-writer workload, and at
// every fdatasync the store makes (inside Sync(), region growth and tail
// scrubbing), before it runs. Each crash image is opened in the default
// (tolerate) mode and checked:
//   synced records lost = 0      (acknowledged before a completed Sync())
//   garbage accepted    = 0      (every returned record is one we wrote)
//   holes               = 0      (a writer's records in a region form a
//                                 prefix of what it wrote there)
// and the share of unsynced records that survived is reported. One image
// in eight is then written to, synced, and reopened, to check that recovery
// left it appendable without resurrecting anything.
// CI: >= 10,000 images per granularity. RECMAP_SOAK=1: 10x.
// RECMAP_CRASH_SCALE=P: >= P% of 10,000 (the sanitizer stage).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "crash/crash_util.h"
#include "file_ops.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

constexpr size_t kMaxValue = 3000;

#define NOTE(msg) CRASH_NOTE("power_loss", msg)

struct Written {
  uint64_t id;
  uint32_t writer;
  int64_t region;
};

struct Figures {
  uint64_t images = 0;
  uint64_t crash_points = 0;
  uint64_t units_written = 0, units_dropped = 0, units_garbage = 0;
  uint64_t synced_checked = 0;
  uint64_t synced_lost = 0;
  uint64_t garbage_accepted = 0;
  uint64_t holes = 0;
  uint64_t open_failures = 0;
  uint64_t unsynced_total = 0;
  uint64_t unsynced_recovered = 0;
  uint64_t reopened = 0;
  uint64_t reopen_failures = 0;
};

std::string ReadAll(const std::string& path) { return ReadFile(path); }

bool WriteAll(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t r = ::write(fd, data.data() + done, data.size() - done);
    if (r <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  return true;
}

// The whole harness state; the fault hook reaches it through a global.
class Harness {
 public:
  Harness(std::string dir, size_t unit, uint64_t seed)
      : dir_(std::move(dir)), unit_(unit), rng_(seed) {}

  Figures& figures() { return f_; }

  // Runs one workload of `ops` operations on a fresh store, building
  // `per_point` crash images at every crash point.
  void RunWorkload(uint32_t run, int ops, int per_point) {
    path_ = dir_ + "/work.rmap";
    ::unlink(path_.c_str());
    per_point_ = per_point;
    written_.clear();
    synced_ = 0;
    disk_.clear();
    Options o;
    o.create_if_missing = true;
    o.region_size = 32 << 10;
    o.max_file_size = uint64_t{1} << 30;
    {
      // Crash points start once the store exists (creation is not atomic:
      // a crash inside it may leave a file that is not a store yet).
      std::unique_ptr<Store> store = OpenOrDie(path_, o);
      disk_ = ReadAll(path_);  // creation synced the file
      active_ = true;
      std::vector<std::unique_ptr<Writer>> writers(3);
      for (int op = 0; op < ops; ++op) {
        const uint32_t w = static_cast<uint32_t>(rng_() % writers.size());
        const uint64_t dice = rng_() % 64;
        if (dice < 6) {
          // Sync: promises everything acknowledged so far.
          const uint64_t before = written_.size();
          absl::Status s = store->Sync();
          REQUIRE(s.ok());
          synced_ = before;
        } else if (dice < 8) {
          writers[w].reset();  // clean release; another writer may claim it
        } else {
          if (!writers[w]) {
            absl::StatusOr<std::unique_ptr<Writer>> nw = store->NewWriter();
            REQUIRE(nw.ok());
            writers[w] = std::move(*nw);
          }
          const uint64_t id = uint64_t{run} << 20 | written_.size();
          absl::Status s = writers[w]->Put(id, PayloadFor(id, kMaxValue));
          REQUIRE(s.ok());
          written_.push_back({id, w, writers[w]->region()});
        }
        CrashPoint();
      }
    }
    active_ = false;
  }

  // The fault hook: every fdatasync is a crash point (the flush has not
  // happened yet), and afterwards the disk holds what the file holds now.
  // A ranged durable write (region growth) is a crash point too, but makes
  // only its range and the file size durable: RangeHook, after it.
  static int Hook(io::Op op, void* arg) {
    auto* h = static_cast<Harness*>(arg);
    if (!h->active_ || h->checking_) return 0;
    if (op != io::Op::kFdatasync && op != io::Op::kWriteDurable) return 0;
    h->CrashPoint();
    if (op == io::Op::kFdatasync) h->disk_ = ReadAll(h->path_);
    return 0;
  }
  static void RangeHook(uint64_t offset, uint64_t len, void* arg) {
    auto* h = static_cast<Harness*>(arg);
    if (!h->active_ || h->checking_) return;
    const std::string now = ReadAll(h->path_);
    // Bytes past the old durable size that this write did not cover were
    // allocated but never written back: they read as zeros.
    if (h->disk_.size() < now.size()) h->disk_.resize(now.size(), '\0');
    h->disk_.replace(offset, len, now, offset, len);
  }

 private:
  void CrashPoint() {
    f_.crash_points++;
    const std::string now = ReadAll(path_);
    checking_ = true;
    for (int k = 0; k < per_point_; ++k) CheckImage(BuildImage(now));
    checking_ = false;
  }

  std::string BuildImage(const std::string& now) {
    // File size: the new size reached the disk, or not.
    std::string img = now;
    if (disk_.size() < now.size() && rng_() % 2 == 0) img.resize(disk_.size());
    const size_t n = img.size();
    for (size_t off = 0; off < n; off += unit_) {
      const size_t len = std::min(unit_, n - off);
      std::string_view cur(now.data() + off, len);
      std::string old(len, '\0');
      if (off < disk_.size())
        old.assign(disk_, off, std::min(len, disk_.size() - off));
      old.resize(len, '\0');
      if (cur == old) continue;
      const uint64_t r = rng_() % 8;
      if (r < 3) {
        f_.units_written++;  // img already holds the current bytes
      } else if (r < 6) {
        f_.units_dropped++;
        img.replace(off, len, old);
      } else {
        f_.units_garbage++;
        for (size_t k = 0; k < len; k += 8) {
          const uint64_t g = rng_();
          std::memcpy(img.data() + off + k, &g, std::min<size_t>(8, len - k));
        }
      }
    }
    return img;
  }

  // Opens the image and checks it; returns the ids it holds.
  void CheckImage(const std::string& img) {
    f_.images++;
    const std::string ipath = dir_ + "/image.rmap";
    REQUIRE(WriteAll(ipath, img));
    Options o;
    o.max_file_size = uint64_t{1} << 30;
    absl::flat_hash_set<uint64_t> present;
    {
      absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(ipath, o);
      if (!st.ok()) {
        f_.open_failures++;
        NOTE("image " << f_.images << ": open: " << st.status().ToString());
        return;
      }
      if (!Inspect(**st, &present)) return;
      if (rng_() % 8 == 0) {
        // Restart: append, sync, close, reopen; nothing may change but
        // the new records.
        f_.reopened++;
        absl::StatusOr<std::unique_ptr<Writer>> w = (*st)->NewWriter();
        bool ok = w.ok();
        for (uint64_t k = 0; ok && k < 3; ++k) {
          const uint64_t id = (uint64_t{1} << 40) + k;
          ok = (*w)->Put(id, PayloadFor(id, kMaxValue)).ok();
        }
        if (ok) w->reset();
        ok = ok && (*st)->Sync().ok();
        st->reset();
        absl::flat_hash_set<uint64_t> again;
        absl::StatusOr<std::unique_ptr<Store>> st2 = Store::Open(ipath, o);
        if (!ok || !st2.ok() || !Inspect(**st2, &again, /*extra=*/3)) {
          f_.reopen_failures++;
          NOTE("image " << f_.images << ": reopen failed");
          return;
        }
        for (uint64_t id : present) {
          if (!again.contains(id)) {
            f_.reopen_failures++;
            NOTE("image " << f_.images << ": id " << id
                          << " vanished after reopen");
            break;
          }
        }
        if (again.size() != present.size() + 3) {
          f_.reopen_failures++;
          NOTE("image " << f_.images << ": " << again.size() << " ids after "
                        << "reopen, expected " << present.size() + 3);
        }
      }
    }
  }

  // Checks one opened image. `extra`: records with ids >= 2^40 written
  // after recovery. Returns false if the image failed a check.
  bool Inspect(Store& store, absl::flat_hash_set<uint64_t>* present,
               int extra = 0) {
    const uint64_t errors_before =
        f_.synced_lost + f_.garbage_accepted + f_.holes;
    absl::flat_hash_map<uint64_t, size_t> index_of;  // id -> written_ index
    for (size_t k = 0; k < written_.size(); ++k) index_of[written_[k].id] = k;
    // Per (writer, region): the positions in written_ found, in log order.
    absl::flat_hash_map<uint64_t, std::vector<size_t>> runs;
    const uint32_t regions = store.Stats().regions;
    int extra_seen = 0;
    for (uint32_t r = 0; r < regions; ++r) {
      absl::Status s = store.ForEachInRegion(r, [&](const RecordView& v) {
        if (v.type == RecordType::kPadding) return true;
        if (v.type != RecordType::kPut ||
            !PayloadMatches(v.id, v.value, kMaxValue)) {
          f_.garbage_accepted++;
          NOTE("image " << f_.images << ": garbage accepted at "
                        << v.location.file_offset);
          return true;
        }
        if (v.id >= uint64_t{1} << 40) {
          extra_seen++;
          present->insert(v.id);
          return true;
        }
        auto it = index_of.find(v.id);
        if (it == index_of.end() || present->contains(v.id)) {
          f_.garbage_accepted++;
          NOTE("image " << f_.images << ": unknown or repeated id " << v.id);
          return true;
        }
        present->insert(v.id);
        const Written& w = written_[it->second];
        runs[uint64_t{w.writer} << 32 | static_cast<uint32_t>(r)].push_back(
            it->second);
        return true;
      });
      if (!s.ok()) {
        f_.garbage_accepted++;
        NOTE("image " << f_.images << ": region " << r << ": " << s.ToString());
      }
    }
    if (extra_seen != extra) {
      f_.garbage_accepted++;
      NOTE("image " << f_.images << ": " << extra_seen << " new records");
    }
    // Holes: within a (writer, region) run, the records found must be the
    // first ones that writer wrote to that region, in order.
    absl::flat_hash_map<uint64_t, std::vector<size_t>> expected_runs;
    for (size_t k = 0; k < written_.size(); ++k) {
      expected_runs[uint64_t{written_[k].writer} << 32 |
                    static_cast<uint32_t>(written_[k].region)]
          .push_back(k);
    }
    for (auto& [key, found] : runs) {
      const std::vector<size_t>& want = expected_runs[key];
      for (size_t k = 0; k < found.size(); ++k) {
        if (k >= want.size() || found[k] != want[k]) {
          f_.holes++;
          NOTE("image " << f_.images << ": hole in writer/region " << key);
          break;
        }
      }
    }
    for (size_t k = 0; k < written_.size(); ++k) {
      const bool here = present->contains(written_[k].id);
      if (k < synced_) {
        f_.synced_checked++;
        if (!here) {
          f_.synced_lost++;
          NOTE("image " << f_.images << ": synced id " << written_[k].id
                        << " lost");
        }
      } else if (extra == 0) {
        f_.unsynced_total++;
        if (here) f_.unsynced_recovered++;
      }
    }
    return f_.synced_lost + f_.garbage_accepted + f_.holes == errors_before;
  }

  std::string dir_;
  size_t unit_;
  std::mt19937_64 rng_;
  std::string path_;
  int per_point_ = 1;
  bool active_ = false;
  bool checking_ = false;
  std::string disk_;              // the file as the disk holds it
  std::vector<Written> written_;  // acknowledged records, in order
  size_t synced_ = 0;             // written_[0, synced_) are promised
  Figures f_;
};

void RunPowerLoss(size_t unit, const char* name) {
  const uint64_t target = ScaledCount(10000);
  const uint64_t seed =
      std::getenv("RECMAP_SEED")
          ? std::strtoull(std::getenv("RECMAP_SEED"), nullptr, 10)
          : static_cast<uint64_t>(
                std::chrono::steady_clock::now().time_since_epoch().count());
  std::printf("power loss (%s): seed %llu (RECMAP_SEED to replay)\n", name,
              static_cast<unsigned long long>(seed));
  // The store and its images live in tmpfs when there is one: the model
  // decides what reached the disk, not the file system.
  std::string base = "/dev/shm";
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0')
    base = t;
  struct stat st;
  if (::stat(base.c_str(), &st) != 0) base = "/tmp";
  std::string tmpl = base + "/recmap-power-XXXXXX";
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  Harness h(tmpl, unit, seed);
  io::SetFaultHook(&Harness::Hook, &h);
  io::SetDurableRangeHook(&Harness::RangeHook, &h);
  for (uint32_t run = 1; h.figures().images < target; ++run) {
    h.RunWorkload(run, 120, 2);
    const Figures& f = h.figures();
    if (f.synced_lost + f.garbage_accepted + f.holes + f.open_failures +
            f.reopen_failures !=
        0) {
      NOTE("failed in run " << run << ", seed " << seed);
      break;
    }
  }
  io::SetFaultHook(nullptr, nullptr);
  io::SetDurableRangeHook(nullptr, nullptr);
  std::string rm = "rm -rf " + tmpl;
  REQUIRE(std::system(rm.c_str()) == 0);
  const Figures& f = h.figures();
  const double share = f.unsynced_total == 0
                           ? 0.0
                           : 100.0 * static_cast<double>(f.unsynced_recovered) /
                                 static_cast<double>(f.unsynced_total);
  RECMAP_FIGURES(
      "power_loss_%s: images=%llu crash_points=%llu units written/dropped/"
      "garbage=%llu/%llu/%llu synced_checked=%llu synced_lost=%llu "
      "garbage_accepted=%llu holes=%llu open_failures=%llu "
      "unsynced_recovered=%llu/%llu (%.1f%%) reopened=%llu "
      "reopen_failures=%llu",
      name, (unsigned long long)f.images, (unsigned long long)f.crash_points,
      (unsigned long long)f.units_written, (unsigned long long)f.units_dropped,
      (unsigned long long)f.units_garbage, (unsigned long long)f.synced_checked,
      (unsigned long long)f.synced_lost, (unsigned long long)f.garbage_accepted,
      (unsigned long long)f.holes, (unsigned long long)f.open_failures,
      (unsigned long long)f.unsynced_recovered,
      (unsigned long long)f.unsynced_total, share,
      (unsigned long long)f.reopened, (unsigned long long)f.reopen_failures);
  CHECK(f.images >= target);
  CHECK(f.synced_checked > 0);
  CHECK(f.units_garbage > 0);
  CHECK(f.synced_lost == 0);
  CHECK(f.garbage_accepted == 0);
  CHECK(f.holes == 0);
  CHECK(f.open_failures == 0);
  CHECK(f.reopen_failures == 0);
}

TEST_CASE("power loss: 4 KiB pages written, dropped or garbage",
          "[crash][power]") {
  RunPowerLoss(4096, "4k_pages");
}

TEST_CASE("power loss: 512-byte sectors written, dropped or garbage",
          "[crash][power]") {
  RunPowerLoss(512, "512b_sectors");
}

}  // namespace
}  // namespace recmap::testing
