// recmap create FILE [--region-size N]
#include <cstdio>

#include "command.h"

namespace recmap::tool {
namespace {

Registration reg(10, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand("create", "Create an empty store file");
  auto path = std::make_shared<std::string>();
  auto region_size = std::make_shared<uint64_t>(Options().region_size);
  cmd->add_option("file", *path, "store file to create")->required();
  cmd->add_option("--region-size", *region_size,
                  "region size in bytes (multiple of 4096, 16 KiB..4 GiB)")
      ->capture_default_str()
      ->check(DecimalU64("byte count"));
  cmd->footer("Example:\n  recmap create data.rmap --region-size 16777216");
  return [=]() {
    Options o;
    o.create_if_missing = true;
    o.error_if_exists = true;
    o.region_size = *region_size;
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(*path, o);
    if (!s.ok()) return FailOpen(s.status());
    std::printf("created %s (region size %s)\n", path->c_str(),
                HumanBytes(*region_size).c_str());
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
