// The seed's "4K frame shared without copying": one 64 MiB record, read
// zero-copy by four processes at once. Each reader gets a view straight
// into the file mapping -- no read(), no copy -- so the page cache holds
// the blob once, however many processes read it. Each reader reports its
// resident set from /proc/self/smaps_rollup: Rss counts the shared pages
// in every process, Pss splits them between the processes sharing them.
// The sum over the readers of the Pss of their mappings of the store file
// (/proc/self/smaps) shows the memory the blob really uses; the whole
// process's Pss would also count its own code and heap (and, under
// AddressSanitizer, a shadow heap larger than the blob's share).
//
//   large_blob [--mib M] [--readers R]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "recmap/store.h"

namespace {

constexpr uint64_t kBlobId = 4096;

// smaps_rollup field in KiB, or -1.
long long Rollup(const std::string& field) {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream ss(line.substr(field.size() + 1));
      long long kib = -1;
      ss >> kib;
      return kib;
    }
  }
  return -1;
}

// Sum of the Pss (KiB) of this process's mappings of the file `path`
// (already canonical), from /proc/self/smaps, or -1.
long long MappedFilePss(const std::string& path) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool in_file = false;
  long long kib = -1;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const char c = line[0];
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
      // A mapping's header: address perms offset dev inode [pathname].
      std::istringstream ss(line);
      std::string field;
      for (int k = 0; k < 5; ++k) ss >> field;
      std::string name;
      std::getline(ss >> std::ws, name);
      in_file = name == path;
      continue;
    }
    if (in_file && line.rfind("Pss:", 0) == 0) {
      std::istringstream ss(line.substr(4));
      long long v = 0;
      ss >> v;
      kib = (kib < 0 ? 0 : kib) + v;
    }
  }
  return kib;
}

uint64_t Fnv(const char* p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i += 64) {  // one byte per cache line is enough
    h = (h ^ static_cast<unsigned char>(p[i])) * 1099511628211ULL;
  }
  return h;
}

struct Report {
  long long rss_before, rss_after, pss, private_kib, store_pss;
  uint64_t hash;
  bool zero_copy;
};

// Opens the store, reads the blob through a view, touches every page,
// waits until every reader has done the same, then measures, and keeps the
// blob mapped until every reader has measured (a reader that unmapped early
// would leave the pages shared by fewer processes, and a later reader's Pss
// would grow with it).
int Reader(const std::string& path, int ready, int go, int out, int done) {
  recmap::Options o;
  o.read_only = true;
  auto store = recmap::Store::Open(path, o);
  if (!store.ok()) return 1;
  Report r{};
  r.rss_before = Rollup("Rss");
  auto blob = (*store)->Get(kBlobId);  // a view into the mapping: no copy
  if (!blob.ok()) return 2;
  r.hash = Fnv(blob->data(), blob->size());  // touches every page
  // A view, not a copy: the bytes are in the store's mapping, not our heap.
  auto again = (*store)->Get(kBlobId);
  r.zero_copy = again.ok() && again->data() == blob->data();
  char c = 1;
  if (write(ready, &c, 1) != 1 || read(go, &c, 1) < 0) return 3;
  r.rss_after = Rollup("Rss");
  r.pss = Rollup("Pss");
  r.private_kib = Rollup("Private_Clean") + Rollup("Private_Dirty");
  std::error_code ec;
  r.store_pss = MappedFilePss(std::filesystem::canonical(path, ec).string());
  if (write(out, &r, sizeof r) != sizeof r) return 4;
  if (read(done, &c, 1) < 0) return 5;  // EOF: every reader has measured
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t mib = 64;
  int readers = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--mib")
      mib = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--readers")
      readers = std::atoi(argv[i + 1]);
  }
  const uint64_t size = mib << 20;
  const char* t = std::getenv("TMPDIR");
  std::string dir = std::string(t && *t ? t : "/tmp") + "/recmap-lb-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  const std::string path = dir + "/frames.rmap";
  uint64_t want_hash = 0;
  {
    recmap::Options o;
    o.create_if_missing = true;
    o.region_size = (size + (1 << 20)) & ~uint64_t(4095);  // room for one blob
    o.region_size = std::max<uint64_t>(o.region_size, 2 << 20);
    auto store = recmap::Store::Open(path, o);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    std::string frame(size, '\0');
    for (uint64_t i = 0; i < size; ++i) frame[i] = char(i * 2654435761u >> 13);
    want_hash = Fnv(frame.data(), frame.size());
    if (!(*store)->Put(kBlobId, frame).ok()) return 1;
  }
  std::printf("wrote one %llu MiB record\n",
              static_cast<unsigned long long>(mib));
  int ready[2], go[2], out[2], done[2];
  if (pipe(ready) != 0 || pipe(go) != 0 || pipe(out) != 0 || pipe(done) != 0)
    return 1;
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (int k = 0; k < readers; ++k) {
    pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      close(go[1]);  // or the readers never see the parent's "go"
      close(out[0]);
      close(done[1]);
      _exit(Reader(path, ready[1], go[0], out[1], done[0]));
    }
    pids.push_back(pid);
  }
  close(ready[1]);
  close(go[0]);
  close(out[1]);
  close(done[0]);
  char c;
  for (int k = 0; k < readers; ++k) {
    if (read(ready[0], &c, 1) != 1) break;
  }
  close(go[1]);  // all readers hold the blob mapped: measure now
  bool ok = true;
  long long pss_sum = 0;
  for (int k = 0; k < readers; ++k) {
    Report r{};
    if (read(out[0], &r, sizeof r) != sizeof r) {
      ok = false;
      break;
    }
    const bool good = r.hash == want_hash && r.zero_copy && r.store_pss >= 0;
    ok = ok && good;
    pss_sum += r.store_pss;
    std::printf(
        "reader %d: blob %s, zero-copy %s; Rss %lld MiB (shared pages counted "
        "in full), Pss %lld MiB, private %lld MiB, Pss of the store "
        "mapping %lld MiB\n",
        k, r.hash == want_hash ? "intact" : "CORRUPT",
        r.zero_copy ? "yes" : "NO", r.rss_after >> 10, r.pss >> 10,
        r.private_kib >> 10, r.store_pss >> 10);
  }
  close(done[1]);  // every reader has reported: they may unmap now
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::printf("reader process %d ended with status %#x\n", int(p), st);
      ok = false;
    }
  }
  const long long one_copy = static_cast<long long>(size >> 10);
  std::printf(
      "sum of the readers' store-mapping Pss: %lld MiB for %d readers of a "
      "%llu MiB blob "
      "(%d private copies would be %lld MiB)\n",
      pss_sum >> 10, readers, static_cast<unsigned long long>(mib), readers,
      (one_copy * readers) >> 10);
  // One shared copy (plus the store's header pages); far below two copies,
  // let alone one per reader.
  const bool shared = pss_sum < 2 * one_copy;
  std::printf("memory: %s\n", shared ? "one shared copy" : "NOT SHARED");
  std::filesystem::remove_all(dir);
  ok = ok && (readers < 2 || shared);
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
