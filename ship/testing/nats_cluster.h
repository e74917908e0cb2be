// A real N-node nats-server cluster with JetStream on loopback, for the
// replication tests and the ship bench: free ports picked at run time,
// store dirs in a fresh temporary folder (removed by the destructor),
// servers SIGKILLed by the destructor and, should the owning process die,
// by the kernel (PR_SET_PDEATHSIG). Library recmap_nats_cluster; needs the
// nats-server binary (/usr/sbin/nats-server, scripts/install-deps.sh).
#ifndef RECMAP_SHIP_TESTING_NATS_CLUSTER_H_
#define RECMAP_SHIP_TESTING_NATS_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace recmap::testing {

class NatsCluster {
 public:
  // Starts `nodes` servers and waits (up to 60 s) until a file-storage
  // stream `stream` (subjects "recmap.>") with `nodes` replicas exists.
  // Errors: Internal (no free port, fork), DeadlineExceeded (the stream
  // could not be created within 60 s; the servers' logs are in dir()).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<NatsCluster>> Start(
      const std::string& stream, int nodes = 3);
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // "nats://127.0.0.1:p1,nats://127.0.0.1:p2,..."
  std::string urls() const;
  std::string url(int node) const;
  // SIGKILLs node `node` and reaps it (idempotent).
  void Kill(int node);
  // SIGSTOP / SIGCONT: a node that hangs without closing its sockets.
  void Stop(int node);
  void Continue(int node);
  const std::string& stream() const { return stream_; }
  const std::string& dir() const { return dir_; }

 private:
  NatsCluster() = default;
  std::string dir_;
  std::string stream_;
  std::vector<int> ports_;
  std::vector<pid_t> pids_;
};

// Runs argv (argv[0] a path) as a child with stdout and stderr appended to
// `out_file`; the child is SIGKILLed if this process dies. Returns its pid,
// or -1 if fork failed.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_file);
// Waits at most `seconds` for `pid`; SIGKILLs it after that. Returns the
// exit code, 128+signal, or -1 if it had to be killed.
int WaitFor(pid_t pid, double seconds);

}  // namespace recmap::testing

#endif  // RECMAP_SHIP_TESTING_NATS_CLUSTER_H_
