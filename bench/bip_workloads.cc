// The Boost.Interprocess peer: what a C++ user would write for the seed's
// PersistentSharedData. One managed_mapped_file holds a header (an
// interprocess_mutex, the log's end, the record count), an offset table
// indexed by id and the log itself; every append takes the mutex, so
// writers in several processes serialise on it.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/interprocess/managed_mapped_file.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <cstring>
#include <exception>
#include <memory>

#include "workloads.h"

namespace recmap::bench {
namespace {

namespace bip = boost::interprocess;

struct Header {
  bip::interprocess_mutex mu;
  uint64_t end = 0;    // bytes of the log in use
  uint64_t count = 0;  // records appended
};

// One open file: the header, the table (ids 0..max_id) and the log.
struct BipFile {
  std::unique_ptr<bip::managed_mapped_file> file;
  Header* hdr = nullptr;
  uint64_t* table = nullptr;  // id -> log offset + 1 (0: absent)
  char* log = nullptr;
  uint64_t log_size = 0;
};

uint64_t RecordSize(size_t len) { return 16 + ((len + 7) & ~size_t{7}); }

// Creates (`create`) or opens the file at `path` sized for n records of
// `len` bytes. Boost.Interprocess reports errors by exception; none
// leaves this function.
bool OpenBip(const std::string& path, uint64_t n, size_t len, bool create,
             BipFile* f, std::string* error) {
  try {
    const uint64_t log_size = n * RecordSize(len);
    if (create) {
      const uint64_t size = log_size + (n + 1) * 8 + (1 << 20);
      f->file = std::make_unique<bip::managed_mapped_file>(bip::create_only,
                                                           path.c_str(), size);
      f->hdr = f->file->construct<Header>("header")();
      f->table = f->file->construct<uint64_t>("table")[n + 1](0);
      // The log is allocated, not constructed: constructing a char array
      // zeroes it, which would populate every page before the clock.
      f->log = static_cast<char*>(f->file->allocate(log_size));
      f->file->construct<uint64_t>("log_handle")(
          f->file->get_handle_from_address(f->log));
      f->file->construct<uint64_t>("log_size")(log_size);
      f->log_size = log_size;
    } else {
      f->file = std::make_unique<bip::managed_mapped_file>(bip::open_only,
                                                           path.c_str());
      f->hdr = f->file->find<Header>("header").first;
      f->table = f->file->find<uint64_t>("table").first;
      const uint64_t* handle = f->file->find<uint64_t>("log_handle").first;
      const uint64_t* size = f->file->find<uint64_t>("log_size").first;
      if (handle != nullptr && size != nullptr) {
        f->log = static_cast<char*>(f->file->get_address_from_handle(
            static_cast<bip::managed_mapped_file::handle_t>(*handle)));
        f->log_size = *size;
      }
    }
    if (f->hdr == nullptr || f->table == nullptr || f->log == nullptr) {
      *error = "bip: " + path + " lacks its objects";
      return false;
    }
    return true;
  } catch (const std::exception& e) {
    *error = std::string("bip: ") + e.what();
    return false;
  }
}

// Appends `value` as record `id` under the mutex.
bool BipPut(BipFile& f, uint64_t id, std::string_view value) {
  const uint64_t rec = RecordSize(value.size());
  bip::scoped_lock<bip::interprocess_mutex> lock(f.hdr->mu);
  if (f.hdr->end + rec > f.log_size) return false;
  char* p = f.log + f.hdr->end;
  const uint64_t h[2] = {id, value.size()};
  std::memcpy(p, h, 16);
  std::memcpy(p + 16, value.data(), value.size());
  f.table[id] = f.hdr->end + 1;
  f.hdr->end += rec;
  ++f.hdr->count;
  return true;
}

bool BipAppendRange(BipFile& f, uint64_t from, uint64_t to, size_t len,
                    Measure* m) {
  ValueMaker vm(len);
  for (uint64_t i = from; i < to; ++i) {
    if (!BipPut(f, i, vm.For(i))) {
      m->error = "bip: log full";
      return false;
    }
  }
  return true;
}

}  // namespace

Measure BipAppend(const std::string& dir, uint64_t n, size_t len) {
  Measure m;
  BipFile f;
  if (!OpenBip(dir + "/bip.bin", n, len, true, &f, &m.error)) return m;
  const double t0 = Now(), c0 = CpuNow();
  if (!BipAppendRange(f, 1, n + 1, len, &m)) return m;
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = true;
  return m;
}

Measure BipWriters(const std::string& dir, uint64_t n, size_t len, int procs) {
  Measure m;
  const std::string path = dir + "/bip_writers.bin";
  {
    BipFile f;
    if (!OpenBip(path, n, len, true, &f, &m.error)) return m;
  }
  const uint64_t each = n / procs;
  return RunProcessesAtOnce(
      procs, each * procs, "bip: a writer",
      [&](int p) -> std::function<bool()> {
        auto f = std::make_shared<BipFile>();
        std::string error;
        if (!OpenBip(path, n, len, false, f.get(), &error)) return nullptr;
        return [f, p, each, len] {
          Measure wm;
          return BipAppendRange(*f, 1 + p * each, 1 + (p + 1) * each, len, &wm);
        };
      });
}

bool BipBuild(const std::string& path, uint64_t n, size_t len,
              std::string* error) {
  BipFile f;
  if (!OpenBip(path, n, len, true, &f, error)) return false;
  Measure m;
  if (!BipAppendRange(f, 1, n + 1, len, &m)) {
    *error = m.error;
    return false;
  }
  f.file->flush();
  return true;
}

Measure BipRandomGet(const std::string& path, uint64_t n) {
  Measure m;
  BipFile f;
  if (!OpenBip(path, n, 0, false, &f, &m.error)) return m;
  const std::vector<uint64_t> ids = Shuffled(n, 7);
  uint64_t bad = 0;
  const double t0 = Now(), c0 = CpuNow();
  for (uint64_t id : ids) {
    const uint64_t at = f.table[id];
    if (at == 0) {
      ++bad;
      continue;
    }
    const char* p = f.log + at - 1;
    uint64_t h[2];
    std::memcpy(h, p, 16);
    if (h[0] != id || !CheckValue(id, std::string_view(p + 16, h[1]))) ++bad;
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.ops = n;
  m.ok = bad == 0;
  if (!m.ok) m.error = "bip get: " + std::to_string(bad) + " wrong values";
  return m;
}

Measure BipScan(const std::string& path, uint64_t n) {
  Measure m;
  BipFile f;
  if (!OpenBip(path, n, 0, false, &f, &m.error)) return m;
  uint64_t count = 0, sum = 0;
  const double t0 = Now(), c0 = CpuNow();
  const uint64_t end = f.hdr->end;
  for (uint64_t off = 0; off + 16 <= end;) {
    uint64_t h[2];
    std::memcpy(h, f.log + off, 16);
    sum += static_cast<uint8_t>(f.log[off + 16 + h[1] / 2]);
    ++count;
    off += RecordSize(h[1]);
  }
  m.seconds = Now() - t0;
  m.cpu_seconds = CpuNow() - c0;
  m.extra = static_cast<double>(sum & 1);
  m.ops = count;
  m.ok = count == n;
  if (!m.ok) m.error = "bip scan: " + std::to_string(count) + " records";
  return m;
}

}  // namespace recmap::bench
