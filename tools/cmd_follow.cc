// recmap follow --nats URL --stream NAME [--store UUID] OUT: restore, then
// keep applying the stream's new batches until interrupted.
#include "restore_command.h"

namespace recmap::tool {
namespace {

Registration reg(77, [](CLI::App& app) -> Runner {
  return AddRestoreCommand(
      app, "follow",
      "Keep a replica store current from a JetStream stream, live",
      /*follow=*/true);
});

}  // namespace
}  // namespace recmap::tool
