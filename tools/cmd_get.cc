// recmap get FILE ID [--hex]
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "command.h"

namespace recmap::tool {
namespace {

Registration reg(30, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "get", "Write the latest value of an id to stdout, byte for byte");
  auto path = std::make_shared<std::string>();
  auto id = std::make_shared<uint64_t>(0);
  cmd->add_option("file", *path, "store file")->required();
  AddIdArgument(cmd, id.get());
  auto hex = std::make_shared<bool>(false);
  cmd->add_flag("--hex", *hex,
                "print the value as lowercase hex and a newline instead of "
                "raw bytes");
  cmd->footer(
      "Exits 1 if the id was never written or was deleted.\n"
      "Examples:\n"
      "  recmap get data.rmap 42\n"
      "  recmap get data.rmap 43 > photo.jpg\n"
      "  recmap get data.rmap 44 --hex");
  return [=]() {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    absl::StatusOr<std::string_view> v = (*store)->Get(*id);
    if (!v.ok()) {
      const int rc = Fail(absl::Status(
          v.status().code(), absl::StrCat(*path, ": ", v.status().message())));
      // Not found, while published records could not be read: the id may
      // be one of them, so this is damage, not a missing id.
      if (absl::IsNotFound(v.status()) && ReportUnreadable(**store) != 0)
        return static_cast<int>(kExitDamaged);
      return rc;
    }
    std::string hexed;
    std::string_view bytes = *v;
    if (*hex) {
      hexed = Hex(*v) + "\n";
      bytes = hexed;
    }
    if ((!bytes.empty() &&
         std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) ||
        std::fflush(stdout) != 0) {
      return Fail(absl::UnavailableError(
          absl::StrCat("writing to stdout: ", std::strerror(errno))));
    }
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
