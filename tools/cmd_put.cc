// recmap put FILE ID [VALUE] [--file PATH]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "command.h"
#include "format.h"

namespace recmap::tool {
namespace {

// Reads all of `f` (binary). Errors name `what`.
absl::StatusOr<std::string> ReadAll(std::FILE* f, const std::string& what) {
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  if (std::ferror(f)) {
    return absl::UnavailableError(
        absl::StrCat(what, ": read failed: ", std::strerror(errno)));
  }
  return out;
}

// The region size in the file header of the store at `path`, read without
// opening the store (which, writable, may recover it: a write); nullopt if
// the header cannot be read, for the open to report why.
std::optional<uint64_t> RegionSizeOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return std::nullopt;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[FileHeader::kEncodedSize];
  const ssize_t r = ::pread(fd, buf, sizeof(buf), 0);
  ::close(fd);
  FileHeader h;
  if (r <= 0 || !h.DecodeFrom(buf, static_cast<size_t>(r)).ok())
    return std::nullopt;
  return h.region_size;
}

absl::StatusOr<std::string> ReadValueFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int e = errno;
    const std::string msg = absl::StrCat(path, ": ", std::strerror(e));
    // A value file that cannot be read is an I/O problem, never "not found"
    // (exit 1 means a missing id).
    return e == EACCES ? absl::PermissionDeniedError(msg)
                       : absl::UnavailableError(msg);
  }
  absl::StatusOr<std::string> v = ReadAll(f, path);
  std::fclose(f);
  return v;
}

Registration reg(20, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "put", "Write a value for an id (from VALUE, --file, or stdin)");
  auto path = std::make_shared<std::string>();
  auto id = std::make_shared<uint64_t>(0);
  auto value = std::make_shared<std::string>();
  auto value_file = std::make_shared<std::string>();
  auto sync = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "store file")->required();
  AddIdArgument(cmd, id.get());
  CLI::Option* value_opt =
      cmd->add_option("value", *value, "the value, taken as raw bytes");
  CLI::Option* file_opt =
      cmd->add_option("--file", *value_file, "read the value from this file");
  file_opt->excludes(value_opt);
  cmd->add_flag("--sync", *sync,
                "wait until the record survives a power loss (Sync); "
                "without it, it survives this process's exit or crash but "
                "not a power cut");
  cmd->footer(
      "With neither VALUE nor --file the value is read from stdin.\n"
      "Without --sync a record is published (visible to every reader, kept if\n"
      "this process dies) but may be lost in a power cut. Each --sync closes\n"
      "the region's current 4 KiB page, so syncing every put of a long loop\n"
      "costs a page per record.\n"
      "Examples:\n"
      "  recmap put data.rmap 42 hello\n"
      "  recmap put data.rmap 43 --file photo.jpg --sync\n"
      "  printf 'a\\0b' | recmap put data.rmap 44\n"
      "  recmap put data.rmap 45 -- -starts-with-a-dash");
  return [=]() {
    absl::StatusOr<std::string> bytes;
    if (value_opt->count() > 0) {
      bytes = *value;
    } else if (file_opt->count() > 0) {
      bytes = ReadValueFile(*value_file);
    } else {
      bytes = ReadAll(stdin, "stdin");
    }
    if (!bytes.ok()) return Fail(bytes.status());
    // Validate before the writable open: a command that fails validation
    // writes nothing (the open would recover the store, a write).
    if (std::optional<uint64_t> rs = RegionSizeOf(*path)) {
      if (absl::Status s = CheckPayloadSize(bytes->size(), *rs); !s.ok())
        return Fail(s);
    }
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/false);
    if (!store.ok()) return FailOpen(store.status());
    if (absl::Status s = (*store)->Put(*id, *bytes); !s.ok()) return Fail(s);
    if (*sync) {
      if (absl::Status s = (*store)->Sync(); !s.ok()) return Fail(s);
    }
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
