// recmap: dump, inspect, verify, recover and compact recmap store files.
#include <signal.h>

#include <algorithm>
#include <vector>

#include "command.h"

namespace recmap::tool {
std::vector<std::pair<int, Setup>>& Registry();
}

int main(int argc, char** argv) {
  using namespace recmap::tool;
  // Under a file-size limit (ulimit -f) a write or fallocate past it sends
  // SIGXFSZ, which would end the process; ignored, the call fails with
  // EFBIG, which the library reports as ResourceExhausted (exit 4).
  ::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"recmap: inspect and manage recmap store files", "recmap"};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 1 not found, 2 usage error, 3 damaged store,\n"
      "            4 I/O error (no such file, permission, disk full), 5 "
      "other,\n"
      "            6 store busy (compact while a writer has it open).\n"
      "Run 'recmap <command> --help' for a command's options and examples.");
  auto& reg = Registry();
  std::stable_sort(reg.begin(), reg.end(), [](const auto& a, const auto& b) {
    return a.first < b.first;
  });
  Runner chosen;
  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (auto& [order, setup] : reg) {
    size_t before = app.get_subcommands({}).size();
    Runner r = setup(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) runners.emplace_back(subs.back(), std::move(r));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) return run();
  }
  return kExitUsage;
}
