// `recmap verify` and `recmap recover` draw a progress bar on stderr when it
// is a terminal (here a pseudo-terminal), and nothing on stderr otherwise;
// their report on stdout and their exit status are the same either way.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::TempDir;

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs the tool with `args`, stdout to a pipe and stderr to a pipe or, with
// `tty`, to a pseudo-terminal 100 columns wide.
Run RunTool(const std::vector<std::string>& args, bool tty) {
  int out_pipe[2], err_fds[2];
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  if (tty) {
    struct winsize ws = {};
    ws.ws_row = 24;
    ws.ws_col = 100;
    REQUIRE(::openpty(&err_fds[0], &err_fds[1], nullptr, nullptr, &ws) == 0);
  } else {
    REQUIRE(::pipe2(err_fds, O_CLOEXEC) == 0);
  }
  const std::string tool = testing::ToolPath();
  std::vector<char*> argv = {const_cast<char*>(tool.c_str())};
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int null = ::open("/dev/null", O_RDONLY);
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(out_pipe[1], 1) < 0 ||
        ::dup2(err_fds[1], 2) < 0)
      ::_exit(127);
    ::execv(tool.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_fds[1]);
  Run r;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_fds[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  while (open_fds > 0) {
    REQUIRE(::poll(fds, 2, -1) > 0);
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, n);
        continue;
      }
      // EOF, or EIO from a pseudo-terminal whose last writer has gone.
      ::close(fds[i].fd);
      fds[i].fd = -1;
      --open_fds;
    }
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string MakeStore(TempDir& dir) {
  const std::string path = dir.File("s.rmap");
  auto s = OpenOrDie(path, testing::SmallOptions());
  for (uint64_t id = 0; id < 2000; ++id)
    REQUIRE(s->Put(id, std::string(100 + id % 50, 'v')).ok());
  return path;
}

// The bar's last state: the line after the last carriage return, complete.
void CheckBar(const std::string& err, const std::string& label) {
  INFO(err);
  REQUIRE(!err.empty());
  CHECK(err.front() == '\r');
  // Each draw is "\r" LINE "\033[K"; the bar ends with "\n", which a
  // pseudo-terminal turns into "\r\n".
  const std::string end = "\033[K\r\n";
  REQUIRE(err.size() > end.size());
  CHECK(err.substr(err.size() - end.size()) == end);
  const std::string body = err.substr(0, err.size() - end.size());
  const std::string line = body.substr(body.rfind('\r') + 1);
  CHECK(line.rfind(label + " [", 0) == 0);
  CHECK(line.find("] 100%  2000 records") != std::string::npos);
  CHECK(line.find("left 0.0 s") != std::string::npos);
}

TEST_CASE("recmap verify: a progress bar on a terminal only", "[cli]") {
  TempDir dir;
  const std::string path = MakeStore(dir);
  const Run plain = RunTool({"verify", path}, /*tty=*/false);
  CHECK(plain.status == 0);
  CHECK(plain.err.empty());
  CHECK(plain.out == path +
                         ": 6 regions, 2000 records (2000 puts, 0 deletes), "
                         "243.2 KiB of payload, 2000 ids indexed, 0 torn "
                         "tails: clean\n");
  const Run tty = RunTool({"verify", path}, /*tty=*/true);
  CHECK(tty.status == plain.status);
  CHECK(tty.out == plain.out);
  CheckBar(tty.err, "verify");
}

TEST_CASE("recmap recover: a progress bar on a terminal only", "[cli]") {
  TempDir dir;
  const std::string path = MakeStore(dir);
  for (const bool dry_run : {true, false}) {
    std::vector<std::string> args = {"recover", path};
    if (dry_run) args.push_back("--dry-run");
    INFO("dry run " << dry_run);
    const Run plain = RunTool(args, /*tty=*/false);
    CHECK(plain.status == 0);
    CHECK(plain.err.empty());
    CHECK(plain.out ==
          path + (dry_run ? " (tolerate mode, dry run)" : " (tolerate mode)") +
              ": 6 regions, 2000 records kept, 0 ranges " +
              (dry_run ? "would drop" : "dropped") + "\n");
    const Run tty = RunTool(args, /*tty=*/true);
    CHECK(tty.status == plain.status);
    CHECK(tty.out == plain.out);
    CheckBar(tty.err, "recover");
  }
}

}  // namespace
}  // namespace recmap
