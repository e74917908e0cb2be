// The seed's race demo. Four processes each increment a shared counter
// 1,000 times. The seed's way -- `counter[0] += 1` on shared memory --
// loses increments (load, add, store interleave). With recmap each
// increment is an appended record: no lock, no lost update, 4,000 records
// every time, and the count survives the processes.
//
//   shared_counter [--processes P] [--increments N]
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "recmap/store.h"

namespace {

bool WaitAll(const std::vector<pid_t>& pids) {
  bool ok = true;
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  int procs = 4, n = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--processes")
      procs = std::atoi(argv[i + 1]);
    else if (a == "--increments")
      n = std::atoi(argv[i + 1]);
  }
  const uint64_t want = uint64_t(procs) * n;

  // 1. The seed's unsafe counter: a plain int64 in shared memory.
  auto* counter =
      static_cast<volatile int64_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  if (counter == MAP_FAILED) return 1;
  *counter = 0;
  std::fflush(stdout);
  std::vector<pid_t> pids;
  for (int p = 0; p < procs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < n; ++i) {
        int64_t v = *counter;           // load ...
        if (i % 8 == 0) sched_yield();  // ... (widen the window) ...
        *counter = v + 1;               // ... store: increments get lost
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  WaitAll(pids);
  std::printf("unsafe shared int64: %lld of %llu (%lld increments lost)\n",
              static_cast<long long>(*counter),
              static_cast<unsigned long long>(want),
              static_cast<long long>(int64_t(want) - *counter));

  // 2. recmap: each increment is an appended record.
  const char* t = std::getenv("TMPDIR");
  std::string dir = std::string(t && *t ? t : "/tmp") + "/recmap-sc-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return 1;
  const std::string path = dir + "/counter.rmap";
  {
    recmap::Options o;
    o.create_if_missing = true;
    o.region_size = 1 << 20;
    if (!recmap::Store::Open(path, o).ok()) return 1;
  }
  pids.clear();
  for (int p = 0; p < procs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      auto store = recmap::Store::Open(path, {});
      if (!store.ok()) _exit(1);
      for (int i = 0; i < n; ++i) {
        if (!(*store)->Append("+1").ok()) _exit(2);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  const bool children_ok = WaitAll(pids);
  // Count after every process has exited: the records persist.
  recmap::Options ro;
  ro.read_only = true;
  auto store = recmap::Store::Open(path, ro);
  if (!store.ok()) return 1;
  uint64_t count = 0;
  if (!(*store)
           ->ForEachLive([&](const recmap::RecordView& v) {
             count += v.value == "+1";
             return true;
           })
           .ok())
    return 1;
  std::printf("recmap: %llu of %llu increments recorded\n",
              static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(want));
  store->reset();
  std::filesystem::remove_all(dir);
  const bool ok = children_ok && count == want;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
