// recmap restore --nats URL --stream NAME [--store UUID] OUT, and the body
// recmap follow shares with it (restore_command.h).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "absl/strings/str_replace.h"
#include "command.h"
#include "recmap/shipper.h"
#include "restore_command.h"

namespace recmap::tool {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

}  // namespace

Runner AddRestoreCommand(CLI::App& app, const char* name,
                         const char* description, bool follow) {
  auto* cmd = app.add_subcommand(name, description);
  auto out = std::make_shared<std::string>();
  auto o = std::make_shared<RestoreOptions>();
  auto timeout = std::make_shared<double>(10);
  cmd->add_option("--nats", o->nats.url,
                  "NATS server URL, or a comma-separated list of cluster nodes")
      ->required();
  cmd->add_option("--stream", o->nats.stream, "JetStream stream name")
      ->required();
  cmd->add_option("--store", o->store_uuid,
                  "uuid of the store to take (needed when the stream holds "
                  "several)");
  cmd->add_option("--prefix", o->nats.subject_prefix, "subject prefix")
      ->capture_default_str();
  cmd->add_option("--timeout", *timeout,
                  "seconds to wait for a connection, a request or a message")
      ->capture_default_str();
  cmd->add_option("--region-size", o->region_size,
                  "region size of a new OUT (default: the source's)");
  cmd->add_option("out", *out, "store file to build (or continue)")->required();
  cmd->footer(
      "Ids, sequence numbers (holes included), values, deletes and their\n"
      "order are those of the source; an existing OUT is continued after the\n"
      "highest sequence it holds.\n"
      "Examples:\n"
      "  recmap " +
      std::string(name) +
      " --nats nats://127.0.0.1:4222 --stream RECMAP copy.rmap");
  return [=]() {
    o->follow = follow;
    o->nats.timeout =
        std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000));
    o->store_uuid = absl::StrReplaceAll(o->store_uuid, {{"-", ""}});
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    const bool tty = ::isatty(2) != 0;
    Options so;
    so.prefault_bytes = 0;
    RestoreStats st;
    absl::Status s = Restore(
        *o, *out, so, [] { return !g_stop.load(); }, &st,
        [&](const RestoreStats& p) {
          if (tty)
            std::fprintf(stderr,
                         "\r%llu records applied, source sequence %llu   ",
                         static_cast<unsigned long long>(p.records),
                         static_cast<unsigned long long>(p.last_sequence));
        });
    if (tty) std::fprintf(stderr, "\n");
    if (!s.ok()) return Fail(s);
    std::printf(
        "applied %llu records (%llu already there) from %llu batches "
        "of store %s through source sequence %llu; duplicates %llu, "
        "gaps %llu\n",
        static_cast<unsigned long long>(st.records),
        static_cast<unsigned long long>(st.skipped),
        static_cast<unsigned long long>(st.batches), st.store_uuid.c_str(),
        static_cast<unsigned long long>(st.last_sequence),
        static_cast<unsigned long long>(st.duplicates),
        static_cast<unsigned long long>(st.gaps));
    return static_cast<int>(kExitOk);
  };
}

namespace {
Registration reg(76, [](CLI::App& app) -> Runner {
  return AddRestoreCommand(
      app, "restore",
      "Build a store from a JetStream stream written by recmap ship",
      /*follow=*/false);
});
}  // namespace
}  // namespace recmap::tool
