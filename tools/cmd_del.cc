// recmap del FILE ID
#include "command.h"

namespace recmap::tool {
namespace {

Registration reg(40, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand("del", "Delete an id (writes a tombstone)");
  auto path = std::make_shared<std::string>();
  auto id = std::make_shared<uint64_t>(0);
  auto sync = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "store file")->required();
  AddIdArgument(cmd, id.get());
  cmd->add_flag("--sync", *sync,
                "wait until the tombstone survives a power loss (Sync); "
                "without it, it survives this process's exit or crash but "
                "not a power cut");
  cmd->footer(
      "Deleting an id that does not exist is not an error (exit 0).\n"
      "Example:\n"
      "  recmap del data.rmap 42");
  return [=]() {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/false);
    if (!store.ok()) return FailOpen(store.status());
    if (absl::Status s = (*store)->Delete(*id); !s.ok()) return Fail(s);
    if (*sync) {
      if (absl::Status s = (*store)->Sync(); !s.ok()) return Fail(s);
    }
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
