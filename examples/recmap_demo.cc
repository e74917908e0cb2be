// The `make demo` program: several writer processes append to one store,
// one is SIGKILLed mid-write, the store is reopened, and every record each
// writer was told was published is checked to be there, byte for byte.
//
//   recmap_demo [--tool PATH_TO_recmap] [--writers N] [--records N] [--keep]
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "recmap/store.h"

namespace {

std::string Value(int writer, uint64_t i) {
  return "writer " + std::to_string(writer) + " record " + std::to_string(i) +
         " " + std::string(i % 64, static_cast<char>('a' + writer));
}

uint64_t Id(int writer, uint64_t i) { return uint64_t(writer) << 32 | i; }

// Appends `records` records (or forever, if 0), logging each index to the
// ack file after Put returned: the ack file is what the writer "told its
// client", and it survives the writer's SIGKILL.
int Writer(const std::string& path, const std::string& ack_path, int writer,
           uint64_t records) {
  recmap::Options o;
  auto store = recmap::Store::Open(path, o);
  if (!store.ok()) {
    std::fprintf(stderr, "writer %d: %s\n", writer,
                 std::string(store.status().message()).c_str());
    return 2;
  }
  int ack = ::open(ack_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (ack < 0) return 3;
  for (uint64_t i = 0; records == 0 || i < records; ++i) {
    absl::Status s = (*store)->Put(Id(writer, i), Value(writer, i));
    if (!s.ok()) {
      std::fprintf(stderr, "writer %d: %s\n", writer,
                   std::string(s.message()).c_str());
      return 4;
    }
    if (::write(ack, &i, sizeof(i)) != sizeof(i)) return 5;
  }
  ::close(ack);
  return 0;
}

uint64_t AckCount(const std::string& ack_path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(ack_path, ec);
  return ec ? 0 : size / sizeof(uint64_t);
}

}  // namespace

int main(int argc, char** argv) {
  std::string tool = "recmap";
  int writers = 4;
  uint64_t records = 20000;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--tool" && i + 1 < argc)
      tool = argv[++i];
    else if (a == "--writers" && i + 1 < argc)
      writers = std::atoi(argv[++i]);
    else if (a == "--records" && i + 1 < argc)
      records = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--keep")
      keep = true;
    else {
      std::fprintf(
          stderr,
          "usage: %s [--tool PATH] [--writers N] [--records N] [--keep]\n",
          argv[0]);
      return 2;
    }
  }
  char tmpl[] = "/tmp/recmap-demo-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string path = dir + "/demo.rmap";
  std::printf("== recmap demo in %s\n", dir.c_str());
  {
    recmap::Options o;
    o.create_if_missing = true;
    o.region_size = 1 << 20;
    auto store = recmap::Store::Open(path, o);
    if (!store.ok()) {
      std::fprintf(stderr, "create: %s\n",
                   std::string(store.status().message()).c_str());
      return 1;
    }
  }
  const int victim = writers > 1 ? 1 : 0;
  std::printf(
      "== %d writer processes append to %s; writer %d will be killed "
      "with SIGKILL mid-write\n",
      writers, path.c_str(), victim);
  std::vector<pid_t> pids;
  for (int w = 0; w < writers; ++w) {
    const std::string ack = dir + "/writer" + std::to_string(w) + ".acks";
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(Writer(path, ack, w, w == victim ? 0 : records));
    pids.push_back(pid);
  }
  // Let the victim publish a few thousand records, then kill it wherever
  // it is -- most likely in the middle of writing a record.
  const std::string victim_acks =
      dir + "/writer" + std::to_string(victim) + ".acks";
  // On a loaded machine the victim may take seconds to start: wait for it
  // to publish something (up to a minute), and for 5000 records or 2 s.
  for (int ms = 0; ms < 60000; ++ms) {
    const uint64_t acks = AckCount(victim_acks);
    if (acks >= 5000 || (acks > 0 && ms >= 2000)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pids[victim], SIGKILL);
  bool writers_ok = true;
  for (int w = 0; w < writers; ++w) {
    int status = 0;
    ::waitpid(pids[w], &status, 0);
    if (w == victim) {
      std::printf("   writer %d: killed by signal %d\n", w,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::printf("   writer %d: FAILED (status %d)\n", w, status);
      writers_ok = false;
    } else {
      std::printf("   writer %d: exited cleanly\n", w);
    }
  }

  std::printf("== reopening the store (recovery runs on open)\n");
  recmap::Options o;
  auto store = recmap::Store::Open(path, o);
  if (!store.ok()) {
    std::printf("open after crash FAILED: %s\n",
                std::string(store.status().message()).c_str());
    return 1;
  }
  std::vector<uint64_t> recovered(writers, 0);
  uint64_t corrupt = 0;
  absl::Status it = (*store)->ForEachLive([&](const recmap::RecordView& v) {
    int w = static_cast<int>(v.id >> 32);
    uint64_t i = v.id & 0xFFFFFFFF;
    if (w < 0 || w >= writers || v.value != Value(w, i)) {
      ++corrupt;
    } else {
      ++recovered[w];
    }
    return true;
  });
  bool ok = it.ok() && writers_ok && corrupt == 0;
  std::printf("   %-8s %12s %12s %10s\n", "writer", "published", "recovered",
              "missing");
  for (int w = 0; w < writers; ++w) {
    const uint64_t published =
        AckCount(dir + "/writer" + std::to_string(w) + ".acks");
    uint64_t missing = 0;
    for (uint64_t i = 0; i < published; ++i) {
      auto v = (*store)->Get(Id(w, i));
      if (!v.ok() || *v != Value(w, i)) ++missing;
    }
    ok = ok && missing == 0 && recovered[w] >= published;
    std::printf("   %-8d %12llu %12llu %10llu%s\n", w,
                static_cast<unsigned long long>(published),
                static_cast<unsigned long long>(recovered[w]),
                static_cast<unsigned long long>(missing),
                w == victim ? "   (killed; recovered may exceed published by "
                              "the record in flight)"
                            : "");
  }
  std::printf("   corrupt records returned: %llu\n",
              static_cast<unsigned long long>(corrupt));
  store->reset();
  std::fflush(stdout);

  std::printf("\n== recmap inspect %s\n", path.c_str());
  std::fflush(stdout);
  int rc = std::system((tool + " inspect " + path).c_str());
  std::printf("\n== recmap dump %s (first 12 lines)\n", path.c_str());
  std::fflush(stdout);
  rc |= std::system((tool + " dump " + path + " | head -n 12").c_str());
  if (rc != 0) {
    std::printf("(the recmap tool failed: exit %d)\n", rc);
    ok = false;
  }
  if (!keep) std::filesystem::remove_all(dir);
  if (ok) {
    std::printf(
        "\n== OK: every published record was recovered, byte for "
        "byte; nothing corrupt was returned\n");
  } else {
    std::printf("\n== FAILED: see the table above\n");
  }
  return ok ? 0 : 1;
}
