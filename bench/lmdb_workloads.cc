#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "rate_sampler.h"
#include "workloads.h"

namespace recmap::bench {
namespace {

constexpr size_t kMapSize = size_t{16} << 30;

struct Env {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  std::string error;
  ~Env() {
    if (env != nullptr) mdb_env_close(env);
  }
  bool Check(int rc, const char* what) {
    if (rc == MDB_SUCCESS) return true;
    if (error.empty())
      error = std::string("lmdb ") + what + ": " + mdb_strerror(rc);
    return false;
  }
  bool Open(const std::string& dir, unsigned flags,
            size_t map_size = kMapSize) {
    ::mkdir(dir.c_str(), 0755);
    if (!Check(mdb_env_create(&env), "env_create")) return false;
    if (!Check(mdb_env_set_mapsize(env, map_size), "set_mapsize")) return false;
    if (!Check(mdb_env_open(env, dir.c_str(), flags, 0644), "env_open"))
      return false;
    MDB_txn* txn;
    if (!Check(mdb_txn_begin(env, nullptr, 0, &txn), "txn_begin")) return false;
    if (!Check(mdb_dbi_open(txn, nullptr, MDB_INTEGERKEY, &dbi), "dbi_open")) {
      mdb_txn_abort(txn);
      return false;
    }
    return Check(mdb_txn_commit(txn), "txn_commit");
  }
};

constexpr unsigned kFastFlags = MDB_NOSYNC | MDB_WRITEMAP;

// Puts keys in the order given, one transaction per `txn` records.
template <typename KeyAt>
bool PutAll(Env& e, uint64_t n, size_t len, uint64_t txn_size, unsigned flags,
            KeyAt key_at) {
  ValueMaker vm(len);
  MDB_txn* txn = nullptr;
  for (uint64_t i = 0; i < n; ++i) {
    if (txn == nullptr &&
        !e.Check(mdb_txn_begin(e.env, nullptr, 0, &txn), "txn_begin"))
      return false;
    size_t id = key_at(i);
    std::string_view v = vm.For(id);
    MDB_val k{sizeof(id), &id};
    MDB_val d{v.size(), const_cast<char*>(v.data())};
    if (!e.Check(mdb_put(txn, e.dbi, &k, &d, flags), "put")) {
      mdb_txn_abort(txn);
      return false;
    }
    if ((i + 1) % txn_size == 0 || i + 1 == n) {
      int rc = mdb_txn_commit(txn);
      txn = nullptr;
      if (!e.Check(rc, "commit")) return false;
    }
  }
  return true;
}

}  // namespace

Measure LmdbAppend(const std::string& dir, uint64_t n, size_t len,
                   uint64_t txn) {
  Measure m;
  Env e;
  if (e.Open(dir, kFastFlags)) {
    const double t0 = Now(), c0 = CpuNow();
    if (PutAll(e, n, len, txn, MDB_APPEND, [](uint64_t i) { return i + 1; })) {
      m.seconds = Now() - t0;
      m.cpu_seconds = CpuNow() - c0;
      m.ops = n;
      m.ok = true;
    }
  }
  m.error = e.error;
  return m;
}

Measure LmdbRandomPut(const std::string& dir, uint64_t n, size_t len,
                      uint64_t txn) {
  Measure m;
  std::vector<uint64_t> ids = Shuffled(n, 42);
  Env e;
  if (e.Open(dir, kFastFlags)) {
    const double t0 = Now(), c0 = CpuNow();
    if (PutAll(e, n, len, txn, 0, [&](uint64_t i) { return ids[i]; })) {
      m.seconds = Now() - t0;
      m.cpu_seconds = CpuNow() - c0;
      m.ops = n;
      m.ok = true;
    }
  }
  m.error = e.error;
  return m;
}

bool LmdbBuild(const std::string& dir, uint64_t n, size_t len,
               std::string* error) {
  Env e;
  bool ok =
      e.Open(dir, kFastFlags) &&
      PutAll(e, n, len, 100000, MDB_APPEND, [](uint64_t i) { return i + 1; }) &&
      e.Check(mdb_env_sync(e.env, 1), "env_sync");
  *error = e.error;
  return ok;
}

Measure LmdbRandomGet(const std::string& dir, uint64_t n) {
  Measure m;
  std::vector<uint64_t> ids = Shuffled(n, 7);
  Env e;
  if (!e.Open(dir, kFastFlags)) {
    m.error = e.error;
    return m;
  }
  MDB_txn* txn;
  if (!e.Check(mdb_txn_begin(e.env, nullptr, MDB_RDONLY, &txn), "txn_begin")) {
    m.error = e.error;
    return m;
  }
  uint64_t bad = 0;
  const double t0 = Now(), c0 = CpuNow();
  for (uint64_t i = 0; i < n; ++i) {
    size_t id = ids[i];
    MDB_val k{sizeof(id), &id}, d;
    if (mdb_get(txn, e.dbi, &k, &d) != MDB_SUCCESS || d.mv_size < 8 ||
        std::memcmp(d.mv_data, &id, 8) != 0)
      ++bad;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  mdb_txn_abort(txn);
  m.ops = n;
  m.ok = bad == 0;
  if (bad) m.error = "lmdb get: " + std::to_string(bad) + " wrong values";
  return m;
}

Measure LmdbScan(const std::string& dir, uint64_t n) {
  Measure m;
  Env e;
  if (!e.Open(dir, kFastFlags)) {
    m.error = e.error;
    return m;
  }
  MDB_txn* txn;
  MDB_cursor* cur;
  if (!e.Check(mdb_txn_begin(e.env, nullptr, MDB_RDONLY, &txn), "txn_begin") ||
      !e.Check(mdb_cursor_open(txn, e.dbi, &cur), "cursor_open")) {
    m.error = e.error;
    return m;
  }
  uint64_t count = 0, sum = 0;
  MDB_val k, d;
  const double t0 = Now(), c0 = CpuNow();
  for (int rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
    uint64_t first;
    std::memcpy(&first, d.mv_data, 8);
    sum += first + d.mv_size;
    ++count;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  m.ops = count;
  m.extra = static_cast<double>(sum & 1);  // keep the reads
  m.ok = count == n;
  if (!m.ok) m.error = "lmdb scan: " + std::to_string(count) + " records";
  return m;
}

Measure LmdbDurable(const std::string& dir, uint64_t batches, uint64_t batch,
                    size_t len) {
  Measure m;
  Env e;
  if (e.Open(dir, MDB_WRITEMAP)) {
    const double t0 = Now(), c0 = CpuNow();
    if (PutAll(e, batches * batch, len, batch, MDB_APPEND,
               [](uint64_t i) { return i + 1; })) {
      m.seconds = Now() - t0;
      m.cpu_seconds = CpuNow() - c0;
      m.ops = batches * batch;
      m.ok = true;
    }
  }
  m.error = e.error;
  return m;
}

Measure LmdbSustained(const std::string& dir, double seconds, size_t len) {
  Measure m;
  Env e;
  // Room for a minute at any disk speed this class of machine has (the
  // file is sparse: MDB_WRITEMAP sizes it to the map).
  if (!e.Open(dir, kFastFlags, size_t{96} << 30)) {
    m.error = e.error;
    return m;
  }
  ValueMaker vm(len);
  std::atomic<uint64_t> count{0};
  constexpr uint64_t kTxn = 100000;
  const double c0 = CpuNow();
  const double t0 = Now();
  RateSampler sampler(&count, seconds);
  size_t id = 1;
  while (!sampler.done()) {
    MDB_txn* txn = nullptr;
    if (!e.Check(mdb_txn_begin(e.env, nullptr, 0, &txn), "txn_begin")) break;
    bool ok = true;
    for (uint64_t k = 0; k < kTxn && ok; ++k, ++id) {
      std::string_view v = vm.For(id);
      MDB_val key{sizeof(id), &id};
      MDB_val d{v.size(), const_cast<char*>(v.data())};
      ok = e.Check(mdb_put(txn, e.dbi, &key, &d, MDB_APPEND), "put");
      if ((k & 255) == 255) count.store(id, std::memory_order_relaxed);
    }
    if (!ok) {
      mdb_txn_abort(txn);
      break;
    }
    if (!e.Check(mdb_txn_commit(txn), "commit")) break;
    count.store(id - 1, std::memory_order_relaxed);
  }
  sampler.Stop();
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  if (!e.error.empty()) {
    m.error = e.error;
    return m;
  }
  m.ops = id - 1;
  m.steady_ops_per_sec = sampler.RateSince(1.0 / 3);
  m.worst_ops_per_sec = sampler.WorstWindow(1.0);
  const double t1 = Now();
  if (!e.Check(mdb_env_sync(e.env, 1), "env_sync")) {
    m.error = e.error;
    return m;
  }
  m.flush_seconds = Now() - t1;
  MDB_envinfo info;
  if (mdb_env_info(e.env, &info) == MDB_SUCCESS)
    m.bytes = static_cast<double>(info.me_last_pgno + 1) * 4096;
  m.ok = true;
  return m;
}

Measure LmdbCompact(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  const std::string src = dir + "/lmdb", dst = dir + "/lmdb-compact";
  Env e;
  if (!e.Open(src, kFastFlags) ||
      !PutAll(e, n / 2, len, 100000, MDB_APPEND,
              [](uint64_t i) { return i + 1; }) ||
      !PutAll(e, n / 2, len, 100000, 0, [](uint64_t i) { return i + 1; }) ||
      !e.Check(mdb_env_sync(e.env, 1), "env_sync")) {
    m.error = e.error;
    return m;
  }
  ::mkdir(dst.c_str(), 0755);
  const double t0 = Now(), c0 = CpuNow();
  if (!e.Check(mdb_env_copy2(e.env, dst.c_str(), MDB_CP_COMPACT), "copy2")) {
    m.error = e.error;
    return m;
  }
  // Compact() makes its output durable; so must the copy be.
  const std::string out = dst + "/data.mdb";
  int fd = ::open(out.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    m.error = "lmdb compact: cannot fsync " + out;
    if (fd >= 0) ::close(fd);
    return m;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  struct stat a, b;
  if (::stat(out.c_str(), &b) == 0 &&
      ::stat((src + "/data.mdb").c_str(), &a) == 0 && a.st_size > 0)
    m.extra = static_cast<double>(b.st_size) / static_cast<double>(a.st_size);
  ::close(fd);
  m.ops = n;
  m.ok = true;
  return m;
}

}  // namespace recmap::bench
