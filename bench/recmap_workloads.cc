#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <span>

#include "rate_sampler.h"
#include "recmap/compaction.h"
#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "workloads.h"

namespace recmap::bench {
namespace {

Options BenchOptions() {
  Options o;
  o.create_if_missing = true;
  return o;
}

std::unique_ptr<Store> Open(const std::string& path, Measure* m,
                            const Options& o = BenchOptions()) {
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
  if (!s.ok()) {
    m->error = std::string(s.status().message());
    return nullptr;
  }
  return std::move(*s);
}

std::unique_ptr<Writer> NewWriter(Store& store, Measure* m) {
  absl::StatusOr<std::unique_ptr<Writer>> w = store.NewWriter();
  if (!w.ok()) {
    m->error = std::string(w.status().message());
    return nullptr;
  }
  return std::move(*w);
}

// Appends ids from..to-1 (as Append: the assigned id is the sequence; the
// value carries the loop index so readers can check it).
bool AppendRange(Writer& w, uint64_t from, uint64_t to, size_t len,
                 Measure* m) {
  ValueMaker vm(len);
  for (uint64_t i = from; i < to; ++i) {
    absl::StatusOr<uint64_t> id = w.Append(vm.For(i));
    if (!id.ok()) {
      m->error = std::string(id.status().message());
      return false;
    }
  }
  return true;
}

}  // namespace

Measure RecmapAppend(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  auto store = Open(dir + "/append.rmap", &m);
  if (!store) return m;
  auto w = NewWriter(*store, &m);
  if (!w) return m;
  const double t0 = Now(), c0 = CpuNow();
  if (!AppendRange(*w, 1, n + 1, len, &m)) return m;
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = true;
  return m;
}

Measure RecmapAppendClose(const std::string& dir, uint64_t n, size_t len,
                          bool persist_index) {
  Measure m;
  Options o = BenchOptions();
  o.persist_index = persist_index;
  auto store = Open(dir + "/append.rmap", &m, o);
  if (!store) return m;
  auto w = NewWriter(*store, &m);
  if (!w) return m;
  const double t0 = Now(), c0 = CpuNow();
  if (!AppendRange(*w, 1, n + 1, len, &m)) return m;
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  const double t1 = Now();
  w.reset();
  store.reset();
  m.extra = Now() - t1;
  m.ops = n;
  m.ok = true;
  return m;
}

Measure RecmapRandomPut(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  std::vector<uint64_t> ids = Shuffled(n, 42);
  auto store = Open(dir + "/put.rmap", &m);
  if (!store) return m;
  auto w = NewWriter(*store, &m);
  if (!w) return m;
  ValueMaker vm(len);
  const double t0 = Now(), c0 = CpuNow();
  for (uint64_t id : ids) {
    if (absl::Status s = w->Put(id, vm.For(id)); !s.ok()) {
      m.error = std::string(s.message());
      return m;
    }
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = true;
  return m;
}

bool RecmapBuild(const std::string& path, uint64_t n, size_t len,
                 std::string* error) {
  Measure m;
  auto store = Open(path, &m);
  if (!store) {
    *error = m.error;
    return false;
  }
  auto w = NewWriter(*store, &m);
  bool ok = w && AppendRange(*w, 1, n + 1, len, &m);
  *error = m.error;
  return ok;
}

namespace {

// Opens the store the read workloads share, its index caught up (untimed).
std::unique_ptr<Store> OpenForReads(const std::string& path, Measure* m) {
  auto store = Open(path, m);
  if (!store) return nullptr;
  if (absl::Status s = store->Refresh(); !s.ok()) {
    m->error = std::string(s.message());
    return nullptr;
  }
  return store;
}

}  // namespace

Measure RecmapRandomGet(const std::string& path, uint64_t n) {
  Measure m;
  std::vector<uint64_t> ids = Shuffled(n, 7);
  // Ids are sequences 1..n, and the value of sequence s carries s.
  auto store = OpenForReads(path, &m);
  if (!store) return m;
  // The index: the table of records indexed at open plus the persisted
  // index file mapped beside the store, if any.
  m.extra = static_cast<double>(store->Stats().index_memory_bytes) /
            static_cast<double>(n);
  uint64_t bad = 0;
  const double t0 = Now(), c0 = CpuNow();
  for (uint64_t id : ids) {
    absl::StatusOr<std::string_view> v = store->Get(id);
    if (!v.ok() || v->size() < 8 || std::memcmp(v->data(), &id, 8) != 0) ++bad;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = bad == 0;
  if (bad) m.error = "recmap get: " + std::to_string(bad) + " wrong values";
  return m;
}

Measure RecmapRandomMultiGet(const std::string& path, uint64_t n,
                             size_t batch) {
  Measure m;
  std::vector<uint64_t> ids = Shuffled(n, 7);
  auto store = OpenForReads(path, &m);
  if (!store) return m;
  uint64_t bad = 0;
  const double t0 = Now(), c0 = CpuNow();
  for (size_t b = 0; b < ids.size(); b += batch) {
    const size_t k = std::min(batch, ids.size() - b);
    const std::vector<absl::StatusOr<std::string_view>> values =
        store->MultiGet(std::span<const uint64_t>(ids.data() + b, k));
    for (size_t i = 0; i < k; ++i) {
      const absl::StatusOr<std::string_view>& v = values[i];
      if (!v.ok() || v->size() < 8 || std::memcmp(v->data(), &ids[b + i], 8))
        ++bad;
    }
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = bad == 0;
  if (bad) m.error = "recmap multiget: " + std::to_string(bad) + " wrong";
  return m;
}

Measure RecmapScan(const std::string& path, uint64_t n) {
  Measure m;
  auto store = Open(path, &m);
  if (!store) return m;
  uint64_t count = 0, sum = 0;
  const double t0 = Now(), c0 = CpuNow();
  absl::Status s = store->ForEachRecord([&](const RecordView& r) {
    uint64_t first;
    std::memcpy(&first, r.value.data(), 8);
    sum += first + r.value.size();
    ++count;
    return true;
  });
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  if (!s.ok()) {
    m.error = std::string(s.message());
    return m;
  }
  m.ops = count;
  m.extra = static_cast<double>(sum & 1);
  m.ok = count == n;
  if (!m.ok) m.error = "recmap scan: " + std::to_string(count) + " records";
  return m;
}

Measure RecmapWriters(const std::string& dir, uint64_t n, size_t len,
                      int procs) {
  Measure m;
  const std::string path = dir + "/writers.rmap";
  {
    auto store = Open(path, &m);
    if (!store) return m;
  }
  const uint64_t each = n / procs;
  return RunProcessesAtOnce(
      procs, each * procs, "a writer", [&](int p) -> std::function<bool()> {
        // The writer is destroyed before its store (members in reverse).
        struct Child {
          std::unique_ptr<Store> store;
          std::unique_ptr<Writer> w;
        };
        auto c = std::make_shared<Child>();
        Measure cm;
        Options o = BenchOptions();
        o.create_if_missing = false;
        c->store = Open(path, &cm, o);
        if (c->store) c->w = NewWriter(*c->store, &cm);
        if (!c->w) return nullptr;
        return [c, p, each, len] {
          Measure wm;
          return AppendRange(*c->w, 1 + p * each, 1 + (p + 1) * each, len, &wm);
        };
      });
}

Measure RecmapDurable(const std::string& dir, uint64_t batches, uint64_t batch,
                      size_t len) {
  Measure m;
  auto store = Open(dir + "/durable.rmap", &m);
  if (!store) return m;
  auto w = NewWriter(*store, &m);
  if (!w) return m;
  const double t0 = Now(), c0 = CpuNow();
  for (uint64_t b = 0; b < batches; ++b) {
    if (!AppendRange(*w, 1 + b * batch, 1 + (b + 1) * batch, len, &m)) return m;
    if (absl::Status s = store->Sync(); !s.ok()) {
      m.error = std::string(s.message());
      return m;
    }
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = batches * batch;
  m.ok = true;
  return m;
}

Measure RecmapCompact(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  const std::string path = dir + "/compact.rmap";
  {
    auto store = Open(path, &m);
    if (!store) return m;
    auto w = NewWriter(*store, &m);
    if (!w) return m;
    ValueMaker vm(len);
    for (uint64_t round = 0; round < 2; ++round) {
      for (uint64_t id = 1; id <= n / 2; ++id) {
        if (absl::Status s = w->Put(id, vm.For(id)); !s.ok()) {
          m.error = std::string(s.message());
          return m;
        }
      }
    }
  }
  const double t0 = Now(), c0 = CpuNow();
  absl::StatusOr<CompactionResult> r = Compact(path, CompactionOptions());
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  if (!r.ok()) {
    m.error = std::string(r.status().message());
    return m;
  }
  if (r->records_kept != n / 2 || r->records_before != n / 2 * 2) {
    m.error = "recmap compact: kept " + std::to_string(r->records_kept) +
              " of " + std::to_string(r->records_before);
    return m;
  }
  m.ops = r->records_before;
  m.extra = static_cast<double>(r->bytes_after) /
            static_cast<double>(r->bytes_before);
  m.ok = true;
  return m;
}

Measure RecmapSustained(const std::string& dir, double seconds, size_t len) {
  Measure m;
  const std::string path = dir + "/sustained.rmap";
  auto store = Open(path, &m);
  if (!store) return m;
  auto w = NewWriter(*store, &m);
  if (!w) return m;
  ValueMaker vm(len);
  std::atomic<uint64_t> count{0};
  const double c0 = CpuNow();
  const double t0 = Now();
  RateSampler sampler(&count, seconds);
  uint64_t i = 1;
  while (!sampler.done()) {
    for (const uint64_t end = i + 256; i < end; ++i) {
      if (absl::StatusOr<uint64_t> id = w->Append(vm.For(i)); !id.ok()) {
        m.error = std::string(id.status().message());
        return m;
      }
    }
    count.store(i - 1, std::memory_order_relaxed);
  }
  sampler.Stop();
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = i - 1;
  m.steady_ops_per_sec = sampler.RateSince(1.0 / 3);
  m.worst_ops_per_sec = sampler.WorstWindow(1.0);
  const double t1 = Now();
  if (absl::Status s = store->Sync(); !s.ok()) {
    m.error = std::string(s.message());
    return m;
  }
  m.flush_seconds = Now() - t1;
  m.bytes = static_cast<double>(DiskUsage(path));
  m.ok = true;
  // Not closed: the child exits (see workloads.h).
  (void)w.release();
  (void)store.release();
  return m;
}

bool RecmapCrashWrite(const std::string& path, uint64_t n, size_t len,
                      std::string* error) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    Measure m;
    auto store = Open(path, &m);
    auto w = store ? NewWriter(*store, &m) : nullptr;
    if (!w) ::_exit(1);
    // Continue the id space of what is already there.
    const uint64_t have = store->Stats().next_sequence;
    if (!AppendRange(*w, have, have + n, len, &m)) ::_exit(2);
    // Let the background index writer finish what the last seal started
    // (bounded), so that the index on disk covers what its rate limit has
    // it cover, not whatever a race left.
    for (int i = 0; i < 600 && !StorePeer::Rep(*store).IndexPersisterIdle();
         ++i)
      ::usleep(100000);
    ::kill(::getpid(), SIGKILL);
    ::_exit(3);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) return true;
  *error = "crash writer exited with status " + std::to_string(st);
  return false;
}

Measure RecmapOpen(const std::string& path, uint64_t n, bool use_index) {
  Measure m;
  Options o = BenchOptions();
  o.create_if_missing = false;
  o.persist_index = use_index;
  const double t0 = Now(), c0 = CpuNow();
  auto store = Open(path, &m, o);
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  if (!store) return m;
  // Spot-check: the first, last and a few ids in between.
  for (uint64_t id : {uint64_t{1}, n / 3, n / 2, n}) {
    if (id == 0) continue;
    absl::StatusOr<std::string_view> v = store->Get(id);
    if (!v.ok() || v->size() < 8 || std::memcmp(v->data(), &id, 8) != 0) {
      m.error = "record " + std::to_string(id) + " wrong after open";
      return m;
    }
  }
  const double t1 = Now();
  store.reset();
  m.extra = Now() - t1;
  m.ops = n;
  m.ok = true;
  return m;
}

}  // namespace recmap::bench
