// I/O errors, after SQLite's I/O-error tests: through io::SetFaultHook the
// k-th call of each kind the seam knows (io::Op: open, fallocate, ..., stat,
// mmap, fcntl, pread) of a workload fails, once or from then on, for every k
// the workload reaches.
// Each time: every failing call returns a clear Status naming the
// operation; nothing acknowledged is lost (the process did not crash, so
// every published record must come back); after a failed flush no Sync()
// on that handle succeeds; and the store reopens clean (default and
// absolute mode) once the fault is gone.
// Disk full: RLIMIT_FSIZE (SIGXFSZ ignored) in a child, and a small tmpfs
// mount when running as root (else the RLIMIT_FSIZE case stands for it).
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "crash/crash_util.h"
#include "file_ops.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

#define NOTE(msg) CRASH_NOTE("io_fault", msg)

constexpr size_t kOps = static_cast<size_t>(io::Op::kCount);
constexpr size_t kMaxValue = 20000;

struct Fault {
  bool armed = false;
  io::Op op = io::Op::kOpen;
  uint64_t k = 0;           // fail the k-th call (1-based)...
  bool persistent = false;  // ...and every later one
  int err = EIO;
  std::array<uint64_t, kOps> calls{};
  uint64_t injected = 0;
};

int FaultHook(io::Op op, void* arg) {
  auto* f = static_cast<Fault*>(arg);
  const uint64_t n = ++f->calls[static_cast<size_t>(op)];
  if (!f->armed || op != f->op) return 0;
  if (n == f->k || (f->persistent && n > f->k)) {
    f->injected++;
    return f->err;
  }
  return 0;
}

struct Figures {
  uint64_t runs = 0;
  uint64_t injected = 0;
  uint64_t failed_calls = 0;
  uint64_t unclear_status = 0;
  uint64_t lost = 0;
  uint64_t sync_ok_after_failed_flush = 0;
  uint64_t reopen_failures = 0;
};

bool Clear(const absl::Status& s, io::Op op) {
  const std::string m(s.message());
  return !s.ok() && s.code() != absl::StatusCode::kUnknown &&
         (m.find(io::OpName(op)) != std::string::npos ||
          m.find("earlier flush failed") != std::string::npos);
}

// The workload: two writers, growth, Syncs, writer turnover, a reopen.
// Every status is checked against the injected fault; returns the ids of
// acknowledged records.
std::vector<uint64_t> Workload(const std::string& path, Fault* fault,
                               Figures* f) {
  std::vector<uint64_t> acked;
  Options o = SmallOptions();
  o.region_size = 64 << 10;
  auto check = [&](const absl::Status& s) {
    if (s.ok()) return;
    f->failed_calls++;
    if (!fault->armed || !Clear(s, fault->op)) {
      f->unclear_status++;
      NOTE("unclear status: " << s.ToString());
    }
  };
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
    if (!st.ok()) {
      check(st.status());
      continue;
    }
    Store& store = **st;
    bool flush_failed = false;
    std::vector<std::unique_ptr<Writer>> writers(2);
    for (uint64_t n = 0; n < 40; ++n) {
      const uint64_t id = static_cast<uint64_t>(round) << 32 | n;
      const size_t w = n % 2;
      if (n % 10 == 9) {
        writers[w].reset();  // turnover: regions get claimed again
        continue;
      }
      if (n % 7 == 6) {
        absl::Status s = store.Sync();
        if (s.ok() && flush_failed) {
          f->sync_ok_after_failed_flush++;
          NOTE("Sync() succeeded after a failed flush");
        }
        if (!s.ok()) flush_failed = true;
        check(s);
        continue;
      }
      if (!writers[w]) {
        absl::StatusOr<std::unique_ptr<Writer>> nw = store.NewWriter();
        if (!nw.ok()) {
          check(nw.status());
          continue;
        }
        writers[w] = std::move(*nw);
      }
      absl::Status s = writers[w]->Put(id, PayloadFor(id, kMaxValue));
      if (s.ok()) {
        acked.push_back(id);
      } else {
        // A flush inside growth or a scrub failed: the handle is poisoned.
        if (fault->armed && (fault->op == io::Op::kFdatasync ||
                             fault->op == io::Op::kWriteDurable))
          flush_failed = true;
        check(s);
      }
    }
  }
  return acked;
}

// Reopens without faults, in `mode`, and counts acknowledged ids missing.
bool Reopen(const std::string& path, RecoveryMode mode,
            const std::vector<uint64_t>& acked, Figures* f) {
  Options o = SmallOptions();
  o.create_if_missing = false;
  o.recovery_mode = mode;
  absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
  if (!st.ok()) {
    f->reopen_failures++;
    NOTE("reopen: " << st.status().ToString());
    return false;
  }
  for (uint64_t id : acked) {
    absl::StatusOr<std::string_view> v = (*st)->Get(id);
    if (!v.ok() || !PayloadMatches(id, *v, kMaxValue)) {
      f->lost++;
      NOTE("acknowledged id " << id << " lost");
    }
  }
  return true;
}

TEST_CASE("I/O faults: the k-th call of each kind fails, once or for good",
          "[crash][io]") {
  TempDir dir;
  Fault fault;
  io::SetFaultHook(&FaultHook, &fault);
  // A clean run counts the calls of each kind.
  {
    const std::string path = dir.File("count.rmap");
    Figures f;
    Workload(path, &fault, &f);
    REQUIRE(f.failed_calls == 0);
  }
  const std::array<uint64_t, kOps> clean = fault.calls;
  Figures f;
  std::ostringstream reached;
  for (size_t op = 0; op < kOps; ++op) {
    reached << io::OpName(static_cast<io::Op>(op)) << "=" << clean[op] << " ";
    for (uint64_t k = 1; k <= clean[op]; ++k) {
      for (bool persistent : {false, true}) {
        const std::string path = dir.File("s.rmap");
        ::unlink(path.c_str());
        fault = Fault();
        fault.armed = true;
        fault.op = static_cast<io::Op>(op);
        fault.k = k;
        fault.persistent = persistent;
        fault.err = op == size_t(io::Op::kFallocate) ? ENOSPC : EIO;
        f.runs++;
        std::vector<uint64_t> acked = Workload(path, &fault, &f);
        f.injected += fault.injected;
        fault.armed = false;
        struct stat st;
        if (::stat(path.c_str(), &st) != 0 || st.st_size == 0) {
          // Creation itself failed: nothing was acknowledged.
          if (!acked.empty()) f.lost += acked.size();
          continue;
        }
        if (Reopen(path, RecoveryMode::kTolerateTornTail, acked, &f)) {
          Reopen(path, RecoveryMode::kAbsoluteConsistency, acked, &f);
        }
      }
    }
  }
  io::SetFaultHook(nullptr, nullptr);
  RECMAP_FIGURES(
      "io_faults: calls_per_clean_run(%s) runs=%llu injected=%llu "
      "failed_calls=%llu unclear_status=%llu lost=%llu "
      "sync_ok_after_failed_flush=%llu reopen_failures=%llu",
      reached.str().c_str(), (unsigned long long)f.runs,
      (unsigned long long)f.injected, (unsigned long long)f.failed_calls,
      (unsigned long long)f.unclear_status, (unsigned long long)f.lost,
      (unsigned long long)f.sync_ok_after_failed_flush,
      (unsigned long long)f.reopen_failures);
  CHECK(f.injected > 0);
  CHECK(f.unclear_status == 0);
  CHECK(f.lost == 0);
  CHECK(f.sync_ok_after_failed_flush == 0);
  CHECK(f.reopen_failures == 0);
}

// Fills a store until the file system or the file-size limit says no.
// Returns the number of acknowledged records; `err` gets the failure.
uint64_t FillUntilFull(const std::string& path, absl::Status* err) {
  Options o = SmallOptions();
  o.region_size = 64 << 10;
  absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
  if (!st.ok()) {
    *err = st.status();
    return 0;
  }
  uint64_t n = 0;
  for (;; ++n) {
    absl::Status s = (*st)->Put(n, PayloadFor(n, kMaxValue));
    if (!s.ok()) {
      *err = s;
      break;
    }
    if (n > 100000) break;
  }
  (void)(*st)->Sync();
  return n;
}

// Child exit codes of the disk-full checks.
enum : int {
  kFullOk = 0,
  kFullNeverFull = 10,
  kFullWrongCode = 11,
  kFullReopen = 12,
  kFullLost = 13,
};

int CheckDiskFull(const std::string& path) {
  absl::Status err;
  const uint64_t n = FillUntilFull(path, &err);
  if (err.ok()) return kFullNeverFull;
  if (err.code() != absl::StatusCode::kResourceExhausted) {
    std::fprintf(stderr, "disk full gave %s\n", err.ToString().c_str());
    return kFullWrongCode;
  }
  std::fprintf(stderr, "disk full after %llu records: %s\n",
               static_cast<unsigned long long>(n), err.ToString().c_str());
  Options o = SmallOptions();
  o.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
  if (!st.ok()) return kFullReopen;
  for (uint64_t id = 0; id < n; ++id) {
    absl::StatusOr<std::string_view> v = (*st)->Get(id);
    if (!v.ok() || !PayloadMatches(id, *v, kMaxValue)) return kFullLost;
  }
  return kFullOk;
}

TEST_CASE("disk full: RLIMIT_FSIZE", "[crash][io]") {
  TempDir dir;
  const std::string path = dir.File("full.rmap");
  pid_t pid = ForkChild([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = 1 << 20;
    if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return 20;
    return CheckDiskFull(path);
  });
  const int rc = WaitChild(pid);
  RECMAP_FIGURES(
      "disk_full_rlimit_fsize: child_exit=%d (0 = clear "
      "ResourceExhausted, nothing lost, reopened)",
      rc);
  CHECK(rc == kFullOk);
  // And without the limit, the store opens clean and takes more records.
  Options o = SmallOptions();
  o.recovery_mode = RecoveryMode::kAbsoluteConsistency;
  std::unique_ptr<Store> st = OpenOrDie(path, o);
  CHECK(st->Put(1u << 30, "after the limit").ok());
}

TEST_CASE("disk full: a small tmpfs (root), else RLIMIT_FSIZE", "[crash][io]") {
  TempDir dir;
  const std::string mnt = dir.File("mnt");
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  const bool mounted =
      ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1536k") == 0;
  const std::string path = mnt + "/full.rmap";
  pid_t pid = ForkChild([&] {
    if (!mounted) {
      // No mount possible (not root, or no CAP_SYS_ADMIN): the file-size
      // limit stands in for the full file system.
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl;
      rl.rlim_cur = rl.rlim_max = 1536 << 10;
      if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) return 20;
    }
    return CheckDiskFull(path);
  });
  const int rc = WaitChild(pid);
  RECMAP_FIGURES("disk_full_%s: child_exit=%d",
                 mounted ? "tmpfs_1536k" : "rlimit_fallback", rc);
  CHECK(rc == kFullOk);
  if (mounted) {
    // The store opens clean on the full file system.
    {
      Options o = SmallOptions();
      o.create_if_missing = false;
      absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
      CHECK(st.ok());
    }
    ::umount2(mnt.c_str(), MNT_DETACH);
  }
}

}  // namespace
}  // namespace recmap::testing
