// A real 3-node nats-server cluster with JetStream on loopback, for the
// replication tests: free ports picked at run time, store dirs in a temp
// folder, servers killed (SIGKILL) by the destructor and, should the test
// process die, by the kernel (PR_SET_PDEATHSIG).
#ifndef RECMAP_TESTS_REPLICATION_NATS_CLUSTER_H_
#define RECMAP_TESTS_REPLICATION_NATS_CLUSTER_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "test_util.h"

namespace recmap::testing {

class NatsCluster {
 public:
  // Starts `nodes` servers and waits (up to 60 s) until a stream `stream`
  // with `nodes` replicas exists. REQUIREs success.
  NatsCluster(const std::string& stream, int nodes = 3);
  ~NatsCluster();

  // "nats://127.0.0.1:p1,nats://127.0.0.1:p2,..."
  std::string urls() const;
  std::string url(int node) const;
  void Kill(int node);
  const std::string& stream() const { return stream_; }
  const std::string& dir() const { return tmp_.path(); }

 private:
  TempDir tmp_;
  std::string stream_;
  std::vector<int> ports_;
  std::vector<pid_t> pids_;
};

// Runs argv (argv[0] a path) as a child; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_file);
// Waits at most `seconds`; SIGKILLs the child after that. Returns the exit
// code, 128+signal, or -1 if it had to be killed.
int WaitFor(pid_t pid, double seconds);

}  // namespace recmap::testing

#endif  // RECMAP_TESTS_REPLICATION_NATS_CLUSTER_H_
