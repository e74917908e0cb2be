#include "nats_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "recmap/shipper.h"

namespace recmap::testing {
namespace {

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

}  // namespace

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_file) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
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
  return pid;
}

int WaitFor(pid_t pid, double seconds) {
  auto deadline =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
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

NatsCluster::NatsCluster(const std::string& stream, int nodes)
    : stream_(stream) {
  std::vector<int> cports;
  for (int i = 0; i < nodes; ++i) {
    ports_.push_back(FreePort());
    cports.push_back(FreePort());
  }
  std::vector<std::string> routes;
  for (int c : cports)
    routes.push_back(absl::StrCat("nats-route://127.0.0.1:", c));
  for (int i = 0; i < nodes; ++i) {
    std::string conf = tmp_.File(absl::StrCat("n", i, ".conf"));
    WriteFile(conf, absl::StrCat(
                        "listen: 127.0.0.1:", ports_[i], "\n", "server_name: n",
                        i, "\n", "jetstream { store_dir: \"", tmp_.path(),
                        "/js", i, "\" }\n",
                        "cluster { name: rc\n listen: 127.0.0.1:", cports[i],
                        "\n routes: [", absl::StrJoin(routes, ", "), "] }\n"));
    pids_.push_back(Spawn({"/usr/sbin/nats-server", "-c", conf},
                          tmp_.File(absl::StrCat("n", i, ".log"))));
  }
  NatsOptions no;
  no.url = urls();
  no.stream = stream;
  no.timeout = std::chrono::milliseconds(5000);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  absl::Status st;
  while (std::chrono::steady_clock::now() < deadline) {
    st = EnsureStream(no, nodes);
    if (st.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  INFO("cluster in " << tmp_.path() << ": " << st.ToString());
  REQUIRE(st.ok());
}

NatsCluster::~NatsCluster() {
  for (pid_t p : pids_) {
    if (p > 0) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
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

}  // namespace recmap::testing
