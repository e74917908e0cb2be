// The body of `recmap restore` and `recmap follow`: the same options and
// the same run, follow keeping the replica current after catching up.
#ifndef RECMAP_TOOLS_RESTORE_COMMAND_H_
#define RECMAP_TOOLS_RESTORE_COMMAND_H_

#include "command.h"

namespace recmap::tool {

// Adds subcommand `name` to `app` and returns its runner.
Runner AddRestoreCommand(CLI::App& app, const char* name,
                         const char* description, bool follow);

}  // namespace recmap::tool

#endif  // RECMAP_TOOLS_RESTORE_COMMAND_H_
