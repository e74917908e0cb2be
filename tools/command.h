// The recmap tool's subcommand registry and shared helpers. Each
// subcommand lives in its own tools/cmd_<name>.cc and registers itself with
// a static Registration; tools/main.cc builds the CLI11 app from them.
#ifndef RECMAP_TOOLS_COMMAND_H_
#define RECMAP_TOOLS_COMMAND_H_

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "recmap/store.h"

namespace recmap::tool {

// Exit codes, documented in `recmap --help` and docs/CLI.md.
enum ExitCode : int {
  kExitOk = 0,
  kExitNotFound = 1,  // id not found
  kExitUsage = 2,     // bad command line
  kExitDamaged = 3,   // damaged store (DataLoss), or verify found damage
  kExitIo = 4,        // I/O error, permission, disk full, no such file
  kExitInternal = 5,  // anything else
  kExitBusy = 6,      // the store is in use (compact while a writer is open)
};
// Maps a Status to an exit code.
int ExitCodeFor(const absl::Status& s);
// Prints "recmap: <message>" to stderr and returns ExitCodeFor(s).
int Fail(const absl::Status& s);
// As Fail, for a Status from opening a store: a missing store file is an
// I/O error (exit 4), not a missing id (exit 1).
int FailOpen(const absl::Status& s);

// A subcommand: `setup` adds the CLI11 subcommand and its options, and
// returns the function to run once parsing succeeded.
using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App& app)>;

struct Registration {
  // `order` sorts subcommands in --help.
  Registration(int order, Setup setup);
};

// Opens a store for a tool. Errors come back as a Status.
absl::StatusOr<std::unique_ptr<Store>> OpenForTool(const std::string& path,
                                                   bool read_only,
                                                   bool create = false);

// For a tool that opened a store read-only: prints "recmap: <message>" to
// stderr for each set of published records the open found unreadable
// (StoreStats::unreadable; a file cut short, a log ending below its
// committed tail) and returns kExitDamaged, or returns kExitOk if every
// published record was read. With `region` >= 0, only that region counts.
int ReportUnreadable(Store& store, int64_t region = -1);

// Checks that an option's text is an unsigned 64-bit decimal number (CLI11
// alone wraps "-1" and clamps overflow).
CLI::Validator DecimalU64(const std::string& name);

// Adds the required positional ID to `cmd`, accepting only a decimal
// unsigned 64-bit integer (CLI11 alone wraps "-3" and clamps overflow).
CLI::Option* AddIdArgument(CLI::App* cmd, uint64_t* id);

// "1.5 MiB" style sizes.
std::string HumanBytes(uint64_t bytes);
// Printable preview of a payload: printable ASCII as is, other bytes as
// \xHH, cut to `max` bytes with "..." after.
std::string Preview(std::string_view value, size_t max);
std::string Hex(std::string_view bytes);
std::string UuidString(const std::array<uint8_t, 16>& uuid);

}  // namespace recmap::tool

#endif  // RECMAP_TOOLS_COMMAND_H_
