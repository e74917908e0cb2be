#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace recmap::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base && *base ? base : "/tmp") + "/recmap-test-XXXXXX";
  char* p = ::mkdtemp(tmpl.data());
  REQUIRE(p != nullptr);
  path_ = p;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Options SmallOptions() {
  Options o;
  o.create_if_missing = true;
  o.region_size = 64 << 10;
  o.max_file_size = uint64_t{1} << 34;
  return o;
}

std::unique_ptr<Store> OpenOrDie(const std::string& path, const Options& o) {
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

pid_t ForkChild(const std::function<int()>& fn) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 111;
    try {
      rc = fn();
    } catch (...) {
      rc = 112;
    }
    ::_exit(rc);
  }
  return pid;
}

int WaitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

int RunCommand(const std::string& cmd, std::string* out, bool merge_stderr) {
  std::string full = merge_stderr ? cmd + " 2>&1" : cmd;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  if (out) out->clear();
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    if (out) out->append(buf, n);
  }
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ToolPath() {
  const char* t = std::getenv("RECMAP_TOOL");
  return t ? t : "recmap";
}

std::string Payload(uint64_t writer, uint64_t i, size_t max_len) {
  size_t len = (i * 7919 + writer * 31) % (max_len + 1);
  std::string s(len, '\0');
  uint64_t x = writer * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL + 1;
  for (size_t k = 0; k < len; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[k] = static_cast<char>(x);
  }
  return s;
}

}  // namespace recmap::testing
