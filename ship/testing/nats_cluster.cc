#include "nats_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "recmap/shipper.h"

namespace recmap::testing {
namespace {

// A port the kernel just handed out (and that is free again).
absl::StatusOr<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return absl::InternalError("cannot bind a loopback port");
  }
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

}  // namespace

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_file) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
  }
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

int WaitFor(pid_t pid, double seconds) {
  auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

absl::StatusOr<std::unique_ptr<NatsCluster>> NatsCluster::Start(
    const std::string& stream, int nodes) {
  std::unique_ptr<NatsCluster> c(new NatsCluster());
  c->stream_ = stream;
  const char* tmp = ::getenv("TMPDIR");
  std::string templ = absl::StrCat(
      tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/recmap-nats-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr)
    return absl::InternalError(absl::StrCat("mkdtemp ", templ, " failed"));
  c->dir_ = templ;
  std::vector<int> cports;
  for (int i = 0; i < nodes; ++i) {
    absl::StatusOr<int> p = FreePort();
    absl::StatusOr<int> q = FreePort();
    if (!p.ok()) return p.status();
    if (!q.ok()) return q.status();
    c->ports_.push_back(*p);
    cports.push_back(*q);
  }
  std::vector<std::string> routes;
  for (int port : cports)
    routes.push_back(absl::StrCat("nats-route://127.0.0.1:", port));
  for (int i = 0; i < nodes; ++i) {
    std::string conf = absl::StrCat(c->dir_, "/n", i, ".conf");
    std::ofstream(conf) << absl::StrCat(
        "listen: 127.0.0.1:", c->ports_[i], "\n", "server_name: n", i, "\n",
        "jetstream { store_dir: \"", c->dir_, "/js", i, "\" }\n",
        "cluster { name: rc\n listen: 127.0.0.1:", cports[i], "\n routes: [",
        absl::StrJoin(routes, ", "), "] }\n");
    pid_t pid = Spawn({"/usr/sbin/nats-server", "-c", conf},
                      absl::StrCat(c->dir_, "/n", i, ".log"));
    if (pid < 0) return absl::InternalError("fork failed");
    c->pids_.push_back(pid);
  }
  NatsOptions no;
  no.url = c->urls();
  no.stream = stream;
  no.timeout = std::chrono::milliseconds(5000);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  absl::Status st;
  while (std::chrono::steady_clock::now() < deadline) {
    st = EnsureStream(no, nodes);
    if (st.ok()) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no stream '", stream, "' on the cluster in ", c->dir_,
                   " within 60 s: ", st.ToString()));
}

NatsCluster::~NatsCluster() {
  for (size_t i = 0; i < pids_.size(); ++i) Kill(static_cast<int>(i));
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string NatsCluster::url(int node) const {
  return absl::StrCat("nats://127.0.0.1:", ports_[node]);
}

std::string NatsCluster::urls() const {
  std::vector<std::string> u;
  for (size_t i = 0; i < ports_.size(); ++i)
    u.push_back(url(static_cast<int>(i)));
  return absl::StrJoin(u, ",");
}

void NatsCluster::Kill(int node) {
  if (pids_[node] > 0) {
    ::kill(pids_[node], SIGKILL);
    ::waitpid(pids_[node], nullptr, 0);
    pids_[node] = -1;
  }
}

void NatsCluster::Stop(int node) {
  if (pids_[node] > 0) ::kill(pids_[node], SIGSTOP);
}

void NatsCluster::Continue(int node) {
  if (pids_[node] > 0) ::kill(pids_[node], SIGCONT);
}

}  // namespace recmap::testing
