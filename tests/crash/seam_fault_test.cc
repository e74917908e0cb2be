// Faults injected at the calls io_fault_test's workload does not reach
// (or reaches only by chance): the persisted index file's creation, growth
// and rename, the background index writer and the close, compaction's
// rename, unlink and directory syncs, recovery's unlink of the index, and
// the open's header read. Each failure must reach the caller as a Status
// naming the operation and the path, and leave the store (and the index
// file, where one was there) readable.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "compaction.h"
#include "file_ops.h"
#include "index_model.h"
#include "persisted_index.h"
#include "recmap/compaction.h"
#include "recmap/store.h"
#include "recover.h"
#include "store_rep.h"
#include "test_util.h"
#include "tuning.h"

namespace recmap {
namespace {

using testing::CheckModel;
using testing::Fill;
using testing::Model;
using testing::OpenOrDie;
using testing::TempDir;

// Fails calls of one kind from the `k`-th on (`count` of them, 0: all),
// with `err`, while armed. The hook may run on a store's background
// thread: the counters are atomic.
struct Fault {
  io::Op op = io::Op::kCount;
  uint64_t k = 1;
  uint64_t count = 0;
  int err = EIO;
  std::atomic<bool> armed{false};
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> injected{0};

  static int Hook(io::Op op, void* arg) {
    auto* f = static_cast<Fault*>(arg);
    if (!f->armed.load() || op != f->op) return 0;
    const uint64_t n = ++f->calls;
    if (n < f->k || (f->count != 0 && n >= f->k + f->count)) return 0;
    ++f->injected;
    return f->err;
  }
};

// Installs `f` for the scope.
struct ScopedHook {
  explicit ScopedHook(Fault* f) { io::SetFaultHook(&Fault::Hook, f); }
  ~ScopedHook() { io::SetFaultHook(nullptr, nullptr); }
};

bool Contains(const absl::Status& s, const std::string& part) {
  return std::string(s.message()).find(part) != std::string::npos;
}

constexpr uint64_t kRegionSize = 64 << 10;
const std::array<uint8_t, 16> kUuid = {1, 2,  3,  4,  5,  6,  7,  8,
                                       9, 10, 11, 12, 13, 14, 15, 16};

// A location Find can return: region 0, offset 8 * id past the data start.
uint64_t LocationOf(uint64_t id) { return (kRegionDataOffset >> 3) + id; }

// An index file at `path` with `n` entries (ids 1..n).
void WriteIndex(const std::string& path, uint64_t n) {
  absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
      PersistedIndexWriter::Create(path, kUuid, kRegionSize, 256, 64);
  REQUIRE(w.ok());
  (*w)->BeginUpdate(0);
  for (uint64_t id = 1; id <= n; ++id)
    REQUIRE((*w)->Upsert(id, LocationOf(id), [](uint64_t) { return false; }));
  (*w)->EndUpdate();
}

// The file at `path` loads and holds exactly ids 1..n in `slots` slots.
void CheckIndex(const std::string& path, uint64_t n, uint64_t slots) {
  absl::StatusOr<std::unique_ptr<PersistedIndex>> ix =
      PersistedIndex::Load(path, kUuid, kRegionSize);
  INFO(ix.status().ToString());
  REQUIRE(ix.ok());
  CHECK((*ix)->slots() == slots);
  CHECK((*ix)->entries() == n);
  for (uint64_t id = 1; id <= n; ++id)
    REQUIRE((*ix)->Find(id) == LocationOf(id));
  CHECK((*ix)->Find(n + 1) == 0);
}

// A call to fail (the k-th of its kind, with err), and the status code the
// caller must get.
struct FailingCall {
  io::Op op;
  uint64_t k;
  int err;
  absl::StatusCode code;
};
// The calls PersistedIndexWriter::Create makes, each failed in turn.
constexpr FailingCall kCreateCalls[] = {
    {io::Op::kOpen, 1, EIO, absl::StatusCode::kInternal},
    {io::Op::kFallocate, 1, ENOSPC, absl::StatusCode::kResourceExhausted},
    {io::Op::kMmap, 1, ENOMEM, absl::StatusCode::kResourceExhausted},
    {io::Op::kStat, 1, EIO, absl::StatusCode::kInternal},  // fstat
    {io::Op::kRename, 1, EIO, absl::StatusCode::kInternal},
};

// Runs `fn` with the `c.k`-th call of kind `c.op` failing, and checks that
// it failed once, with `c.code` and naming the operation; returns the
// status.
template <typename Fn>
absl::Status FailOnce(const FailingCall& c, Fn&& fn) {
  Fault f;
  f.op = c.op;
  f.k = c.k;
  f.count = 1;
  f.err = c.err;
  absl::Status s;
  {
    ScopedHook hook(&f);
    f.armed = true;
    s = fn();
  }
  INFO(s.ToString());
  CHECK(f.injected == 1);
  CHECK(s.code() == c.code);
  CHECK(Contains(s, io::OpName(c.op)));
  return s;
}

TEST_CASE("index file: a failed create leaves the old file and no temporary",
          "[crash][io][index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap.idx");
  WriteIndex(path, 100);
  for (const FailingCall& c : kCreateCalls) {
    INFO(io::OpName(c.op));
    const absl::Status s = FailOnce(c, [&] {
      return PersistedIndexWriter::Create(path, kUuid, kRegionSize, 512, 64)
          .status();
    });
    CHECK(Contains(s, path + ".tmp"));
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    CheckIndex(path, 100, 256);
  }
}

TEST_CASE("index file: a failed growth leaves the table as it was",
          "[crash][io][index]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap.idx");
  WriteIndex(path, 150);
  absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> w =
      PersistedIndexWriter::Open(path, kUuid, kRegionSize);
  REQUIRE(w.ok());
  std::vector<FailingCall> calls(std::begin(kCreateCalls),
                                 std::end(kCreateCalls));
  // The second rename: the grown file taking the index file's name.
  calls.push_back({io::Op::kRename, 2, EIO, absl::StatusCode::kInternal});
  for (const FailingCall& c : calls) {
    INFO(io::OpName(c.op) << " #" << c.k);
    const absl::Status s = FailOnce(c, [&] { return (*w)->Grow(1024, 64); });
    CHECK(Contains(s, path + ".grow"));
    CHECK_FALSE(std::filesystem::exists(path + ".grow"));
    CHECK_FALSE(std::filesystem::exists(path + ".grow.tmp"));
    CHECK((*w)->IsCurrent());
    CHECK((*w)->slots() == 256);
    CHECK((*w)->entries() == 150);
    CheckIndex(path, 150, 256);
  }
  SECTION("the grown file left behind by a failed unlink is replaced") {
    Fault f;
    f.op = io::Op::kRename;
    f.k = 2;
    f.count = 1;
    f.armed = true;
    // The rename fails, then its clean-up too: .grow stays.
    io::SetFaultHook(
        +[](io::Op op, void* arg) -> int {
          return op == io::Op::kUnlink ? EIO : Fault::Hook(op, arg);
        },
        &f);
    const absl::Status s = (*w)->Grow(1024, 64);
    io::SetFaultHook(nullptr, nullptr);
    CHECK(Contains(s, "rename " + path + ".grow to"));
    CHECK(std::filesystem::exists(path + ".grow"));
    CheckIndex(path, 150, 256);
    REQUIRE((*w)->Grow(1024, 64).ok());
    CHECK_FALSE(std::filesystem::exists(path + ".grow"));
    CheckIndex(path, 150, 1024);
  }
  SECTION("without a fault it grows") {
    REQUIRE((*w)->Grow(1024, 64).ok());
    CHECK((*w)->IsCurrent());
    CheckIndex(path, 150, 1024);
  }
}

// Collects what on_background_error receives, from any thread.
struct Errors {
  std::mutex mu;
  std::vector<absl::Status> seen;
  void Add(const absl::Status& s) {
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(s);
  }
  size_t size() {
    std::lock_guard<std::mutex> l(mu);
    return seen.size();
  }
  absl::Status first() {
    std::lock_guard<std::mutex> l(mu);
    return seen.empty() ? absl::OkStatus() : seen.front();
  }
};

// Every store gets an index file, written from the first seal on: for the
// handles opened with IndexOptions, until DefaultTuning().
Options IndexOptions(bool background, Errors* errors) {
  SetTuningForTesting({.persist_index_min_records = 0,
                       .persist_index_background_min_records = 0});
  Options o = testing::SmallOptions();
  o.persist_index_in_background = background;
  o.on_background_error = [errors](const absl::Status& s) { errors->Add(s); };
  return o;
}

// The library's thresholds, for the handles that check what a fault left.
void DefaultTuning() { SetTuningForTesting(Tuning{}); }

// A store whose index file was written for 2000 operations (about 1000
// ids): the next thousands of new ids make the table grow.
void IndexedStore(const std::string& path, bool background, Model* m) {
  Errors errors;
  {
    auto s = OpenOrDie(path, IndexOptions(background, &errors));
    Fill(*s, *m, 2000, 1);
    REQUIRE(s->Close().ok());
  }
  DefaultTuning();
  REQUIRE(errors.size() == 0);
  REQUIRE(std::filesystem::exists(IndexPathFor(path)));
}

// Reopens without faults: every record as the model says, and the index
// file (the old one, or a new one) still loads.
void CheckReopened(const std::string& path, const Model& m) {
  DefaultTuning();
  {
    Options o = testing::SmallOptions();
    o.create_if_missing = false;
    auto s = OpenOrDie(path, o);
    CheckModel(*s, m);
  }
  auto s = OpenOrDie(path, testing::SmallOptions());
  CHECK(PersistedIndex::Load(IndexPathFor(path), s->info().uuid,
                             s->info().region_size)
            .ok());
}

// `closed`, what Close() returned, reports a failed update of the index
// file of the store at `path`, with `code` and naming `what` failed.
void CheckIndexNotUpdated(const absl::Status& closed, absl::StatusCode code,
                          const std::string& path, const std::string& what) {
  INFO(closed.ToString());
  CHECK(closed.code() == code);
  CHECK(Contains(closed, IndexPathFor(path) +
                             ": index file not updated (the log is intact)"));
  CHECK(Contains(closed, what));
}

// An indexed store (IndexedStore), what its handle's on_background_error
// receives, and the fault to inject.
struct IndexedStoreFault {
  explicit IndexedStoreFault(bool background) {
    IndexedStore(path, background, &m);
  }
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  Errors errors;
  Fault f;
};

TEST_CASE(
    "index writer: a growth failing in the background pass reaches "
    "on_background_error and Close()",
    "[crash][io][index]") {
  IndexedStoreFault t(/*background=*/true);
  t.f.op = io::Op::kRename;  // only the index writer renames
  {
    ScopedHook hook(&t.f);
    t.f.armed = true;
    auto s = OpenOrDie(t.path, IndexOptions(true, &t.errors));
    Fill(*s, t.m, 20000, 2);
    // The background pass is woken as regions seal; wait (bounded, about a
    // minute whatever the load) for it to reach the full table.
    for (int i = 0; i < 6000 && t.errors.size() == 0; ++i) ::usleep(10000);
    REQUIRE(t.errors.size() > 0);
    const absl::Status bg = t.errors.first();
    INFO(bg.ToString());
    CHECK(bg.code() == absl::StatusCode::kInternal);
    CHECK(Contains(bg, "rename " + IndexPathFor(t.path) + ".grow"));
    CheckIndexNotUpdated(s->Close(), absl::StatusCode::kInternal, t.path,
                         "rename");
    CHECK(t.f.injected > 0);
  }
  CHECK_FALSE(std::filesystem::exists(IndexPathFor(t.path) + ".grow"));
  CheckReopened(t.path, t.m);
}

TEST_CASE("index writer: a growth failing at Close() is what Close() returns",
          "[crash][io][index]") {
  IndexedStoreFault t(/*background=*/false);
  t.f.op = io::Op::kFallocate;
  t.f.err = ENOSPC;
  {
    auto s = OpenOrDie(t.path, IndexOptions(false, &t.errors));
    Fill(*s, t.m, 20000, 2);
    ScopedHook hook(&t.f);
    t.f.armed = true;
    CheckIndexNotUpdated(s->Close(), absl::StatusCode::kResourceExhausted,
                         t.path,
                         "fallocate " + IndexPathFor(t.path) + ".grow.tmp");
    // One report per batch that found the table full.
    REQUIRE(t.errors.size() >= 1);
    CHECK(t.errors.first().code() == absl::StatusCode::kResourceExhausted);
  }
  CHECK_FALSE(std::filesystem::exists(IndexPathFor(t.path) + ".grow.tmp"));
  CheckReopened(t.path, t.m);
}

// A store at `path` with overwritten ids (so compaction drops records) and
// an index file.
void CompactableStore(const std::string& path, Model* m) {
  Errors errors;
  auto s = OpenOrDie(path, IndexOptions(false, &errors));
  Fill(*s, *m, 3000, 3);
  REQUIRE(s->Close().ok());
  DefaultTuning();
}

// What a failed compaction must leave: the store at `path` reads as `m`,
// and no temporary copy.
void CheckCompactedOrNot(const std::string& path, const Model& m) {
  DefaultTuning();
  CHECK_FALSE(std::filesystem::exists(path + ".compact-tmp"));
  Options o = testing::SmallOptions();
  o.create_if_missing = false;
  auto s = OpenOrDie(path, o);
  CheckModel(*s, m);
}

// Fails `op` from the first call after compaction step `after` on.
struct CompactionFault {
  io::Op op;
  CompactionStep after;
  const char* names;  // in the message, beside the op
  bool replaced;      // the compacted copy is in place
};

TEST_CASE(
    "compaction: a failed rename, unlink or directory sync is reported "
    "and leaves one complete store",
    "[crash][io][compaction]") {
  const CompactionFault faults[] = {
      {io::Op::kFsyncDir, CompactionStep::kSynced, "", false},
      {io::Op::kRename, CompactionStep::kVerified, ".compact-tmp to", false},
      {io::Op::kUnlink, CompactionStep::kRenamed, ".idx", true},
      {io::Op::kFsyncDir, CompactionStep::kRenamed, "", true},
  };
  for (const CompactionFault& c : faults) {
    INFO(io::OpName(c.op) << " after " << CompactionStepName(c.after));
    TempDir dir;
    const std::string path = dir.File("s.rmap");
    Model m;
    CompactableStore(path, &m);
    Fault f;
    f.op = c.op;
    auto step_hook = [&](CompactionStep k) {
      if (k == c.after) f.armed = true;
    };
    absl::StatusOr<CompactionResult> r;
    {
      ScopedHook hook(&f);
      r = Compact(path, CompactionOptions(), step_hook);
    }
    INFO(r.status().ToString());
    CHECK(f.injected == 1);
    CHECK(r.status().code() == absl::StatusCode::kInternal);
    CHECK(Contains(r.status(), io::OpName(c.op)));
    CHECK(Contains(r.status(), c.names));
    CHECK(Contains(r.status(), dir.File("")));
    CheckCompactedOrNot(path, m);
    // Which generation is in place: the copy has no overwritten records.
    Options ro = testing::SmallOptions();
    ro.create_if_missing = false;
    ro.read_only = true;
    auto s = OpenOrDie(path, ro);
    CHECK((s->Stats().records == s->Stats().live_records) == c.replaced);
  }
}

TEST_CASE("recover: a failed unlink of the index file is reported",
          "[crash][io]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  CompactableStore(path, &m);
  const absl::Status s =
      FailOnce({io::Op::kUnlink, 1, EIO, absl::StatusCode::kInternal},
               [&] { return RecoverStore(path, RecoverOptions()).status(); });
  CHECK(Contains(s,
                 "cannot remove the index file: unlink " + IndexPathFor(path)));
  CheckCompactedOrNot(path, m);
  REQUIRE(RecoverStore(path, RecoverOptions()).ok());
}

TEST_CASE("open: a failed header read, stat or lock is reported",
          "[crash][io]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  Model m;
  CompactableStore(path, &m);
  const FailingCall calls[] = {
      {io::Op::kRead, 1, EIO, absl::StatusCode::kInternal},
      // The second: the first only skips the checks for a directory.
      {io::Op::kStat, 2, EIO, absl::StatusCode::kInternal},
      {io::Op::kLock, 1, EIO, absl::StatusCode::kInternal},
      // The second: the first reserves address space (its message says
      // so, naming max_file_size), the second maps the file.
      {io::Op::kMmap, 2, ENOMEM, absl::StatusCode::kResourceExhausted},
  };
  for (const FailingCall& c : calls) {
    INFO(io::OpName(c.op));
    Options o = testing::SmallOptions();
    o.create_if_missing = false;
    const absl::Status s =
        FailOnce(c, [&] { return Store::Open(path, o).status(); });
    CHECK(Contains(s, c.op == io::Op::kLock ? "OFD lock" : path));
    CheckCompactedOrNot(path, m);
  }
}

TEST_CASE(
    "index writer: a failed index lock at Close() is what Close() returns",
    "[crash][io][index]") {
  IndexedStoreFault t(/*background=*/false);
  t.f.op = io::Op::kLock;
  {
    ScopedHook hook(&t.f);
    auto s = OpenOrDie(t.path, IndexOptions(false, &t.errors));
    Fill(*s, t.m, 2000, 2);
    // Every lock call from here on fails: the close's pass cannot take the
    // index writer's lock, and says so rather than leave the file quietly
    // behind the log.
    t.f.armed = true;
    const absl::Status closed = s->Close();
    t.f.armed = false;
    CHECK(t.f.injected > 0);
    CheckIndexNotUpdated(closed, absl::StatusCode::kInternal, t.path, "lock");
  }
  CheckReopened(t.path, t.m);
}

}  // namespace
}  // namespace recmap
