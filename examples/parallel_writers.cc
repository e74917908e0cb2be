// The seed's PersistentSharedData.parallel_writer, done right. The seed
// gives process p the bytes at p * 1000 and hopes nobody writes more than
// 1000 bytes; here each process gets a region of its own from the store
// (an exclusive, kernel-held lock: no offsets to agree on, no overlap, no
// lock shared with the other writers), and every record is checksummed.
//
//   parallel_writers [--processes P] [--records N]
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "recmap/store.h"

namespace {

std::string Data(int p, int i) {
  return "Process " + std::to_string(p) + " - Record " + std::to_string(i);
}

// Writes process p's records, then holds its region until `release` is
// readable, so that all writers are live at once.
int ParallelWriter(const std::string& path, int p, int n, int ready,
                   int release) {
  auto store = recmap::Store::Open(path, {});
  if (!store.ok()) return 1;
  auto writer = (*store)->NewWriter();
  if (!writer.ok()) return 1;
  for (int i = 0; i < n; ++i) {
    const uint64_t record_id = uint64_t(p) * 100 + i;  // the seed's ids
    if (!(*writer)->Put(record_id, Data(p, i)).ok()) return 2;
  }
  std::printf("process %d wrote %d records into region %lld\n", p, n,
              static_cast<long long>((*writer)->region()));
  std::fflush(stdout);
  char c = 1;
  if (write(ready, &c, 1) != 1 || read(release, &c, 1) < 0) return 3;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int procs = 4, n = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--processes")
      procs = std::atoi(argv[i + 1]);
    else if (a == "--records")
      n = std::atoi(argv[i + 1]);
  }
  if (procs < 1 || n < 1 || n > 100) return 2;
  const char* t = std::getenv("TMPDIR");
  std::string dir = std::string(t && *t ? t : "/tmp") + "/recmap-pw-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  const std::string path = dir + "/shared_data.rmap";
  recmap::Options o;
  o.create_if_missing = true;
  o.region_size = 1 << 20;
  // This process forks after writing: no prefault thread for its one
  // record. (A fork() racing a thread's start can hand the child a locked
  // allocator under a sanitizer's malloc -- glibc's malloc is fork-safe,
  // clang 14's ASan allocator is not. In general: fork, then open.)
  o.prefault_bytes = 0;
  auto main_store = recmap::Store::Open(path, o);
  if (!main_store.ok()) return 1;
  if (!(*main_store)->Put(1, "Hello from main process!").ok()) return 1;

  int ready[2], release[2];
  if (pipe(ready) != 0 || pipe(release) != 0) return 1;
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (int p = 0; p < procs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      close(release[1]);
      _exit(ParallelWriter(path, p, n, ready[1], release[0]));
    }
    pids.push_back(pid);
  }
  close(ready[1]);
  close(release[0]);
  char c;
  for (int p = 0; p < procs; ++p) {
    if (read(ready[0], &c, 1) != 1) break;
  }
  close(release[1]);  // every writer wrote: let them go
  bool ok = true;
  for (pid_t pid : pids) {
    int st = 0;
    waitpid(pid, &st, 0);
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }

  // Read everything back, as the seed's read_record would, but by id.
  std::set<uint32_t> regions;
  int found = 0;
  for (int p = 0; p < procs; ++p) {
    std::map<uint32_t, int> per_region;
    for (int i = 0; i < n; ++i) {
      auto rec = (*main_store)->GetRecord(uint64_t(p) * 100 + i);
      if (!rec.ok() || rec->value != Data(p, i)) {
        std::printf("id %d: %s\n", p * 100 + i,
                    rec.ok() ? "WRONG VALUE" : "MISSING");
        ok = false;
        continue;
      }
      ++found;
      regions.insert(rec->location.region);
      per_region[rec->location.region]++;
    }
    std::printf("process %d: %zu region(s) hold its records\n", p,
                per_region.size());
  }
  auto first = (*main_store)->Get(uint64_t(procs - 1) * 100 + n - 1);
  if (first.ok()) {
    std::printf("id %d: '%.*s'\n", (procs - 1) * 100 + n - 1,
                static_cast<int>(first->size()), first->data());
  }
  std::printf("read back %d of %d records from %zu distinct writer regions\n",
              found, procs * n, regions.size());
  ok = ok && found == procs * n && int(regions.size()) == procs;
  main_store->reset();
  std::filesystem::remove_all(dir);
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
