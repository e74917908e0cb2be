// recmap: dump, inspect, verify, recover and compact recmap store files.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <string>
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
  // CLI11 would take an unknown first word for an extra argument and say
  // only "A subcommand is required": name it, and the subcommands.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr,
                   "recmap: unknown subcommand '%s' (the subcommands: %s)\n"
                   "Run with --help for more information.\n",
                   argv[1], names.c_str());
      return kExitUsage;
    }
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
