// Helpers shared by recmap's tests: scratch directories, child processes,
// and printing statuses in assertions.
#ifndef RECMAP_TESTS_TEST_UTIL_H_
#define RECMAP_TESTS_TEST_UTIL_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/store.h"

namespace absl {
// Lets Catch2 print a Status in a failed assertion.
inline std::ostream& operator<<(std::ostream& os, const Status& s) {
  return os << s.ToString();
}
}  // namespace absl

namespace recmap::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when
// the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Options for a small test store: 64 KiB regions, created if missing.
Options SmallOptions();

// Opens a store or fails the test with the status.
std::unique_ptr<Store> OpenOrDie(const std::string& path, const Options& o);

// Forks; the child runs `fn` and _exits with its return value. Returns the
// child's pid.
pid_t ForkChild(const std::function<int()>& fn);
// Waits for `pid`; returns its exit code, or 128+signal if killed.
int WaitChild(pid_t pid);

// Reads a whole file; empty on error.
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);

// Runs a shell command, capturing stdout (and stderr if `merge_stderr`).
// Returns the exit code.
int RunCommand(const std::string& cmd, std::string* out,
               bool merge_stderr = false);
// Path of the built `recmap` tool ($RECMAP_TOOL, set by ctest).
std::string ToolPath();

// The deterministic payload tests write for (writer, i): length varies
// with i so records of many sizes appear.
std::string Payload(uint64_t writer, uint64_t i, size_t max_len = 200);

}  // namespace recmap::testing

#endif  // RECMAP_TESTS_TEST_UTIL_H_
