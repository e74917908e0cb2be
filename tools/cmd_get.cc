// recmap get FILE ID
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
  cmd->footer(
      "Exits 1 if the id was never written or was deleted.\n"
      "Examples:\n"
      "  recmap get data.rmap 42\n"
      "  recmap get data.rmap 43 > photo.jpg");
  return [=]() {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    absl::StatusOr<std::string_view> v = (*store)->Get(*id);
    if (!v.ok()) {
      return Fail(absl::Status(
          v.status().code(), absl::StrCat(*path, ": ", v.status().message())));
    }
    if ((!v->empty() &&
         std::fwrite(v->data(), 1, v->size(), stdout) != v->size()) ||
        std::fflush(stdout) != 0) {
      return Fail(absl::UnavailableError(
          absl::StrCat("writing to stdout: ", std::strerror(errno))));
    }
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
