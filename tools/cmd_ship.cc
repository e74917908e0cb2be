// recmap ship FILE --nats URL --stream NAME [--once] [--create-stream]
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_format.h"
#include "command.h"
#include "recmap/shipper.h"

namespace recmap::tool {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

Registration reg(75, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "ship", "Ship the store's log to a NATS JetStream stream, exactly once");
  auto path = std::make_shared<std::string>();
  auto o = std::make_shared<ShipperOptions>();
  auto once = std::make_shared<bool>(false);
  auto create = std::make_shared<bool>(false);
  auto replicas = std::make_shared<int>(3);
  auto timeout = std::make_shared<double>(10);
  auto give_up = std::make_shared<double>(30);
  auto linger = std::make_shared<int>(5);
  cmd->add_option("file", *path, "store file")->required();
  cmd->add_option("--nats", o->nats.url,
                  "NATS server URL, or a comma-separated list of cluster nodes")
      ->required();
  cmd->add_option("--stream", o->nats.stream, "JetStream stream name")
      ->required();
  cmd->add_flag("--once", *once, "exit once every record is shipped and acked");
  cmd->add_option("--prefix", o->nats.subject_prefix,
                  "subject prefix; batches go to <prefix>.<store uuid>")
      ->capture_default_str();
  cmd->add_option("--batch", o->max_batch_records, "records per message")
      ->capture_default_str();
  cmd->add_option("--batch-bytes", o->max_batch_bytes, "bytes per message")
      ->capture_default_str();
  cmd->add_option("--linger-ms", *linger,
                  "publish a partial batch after this many ms")
      ->capture_default_str();
  cmd->add_option("--in-flight", o->max_in_flight,
                  "messages published and not yet acknowledged (each chained "
                  "to the one before, so a lost one is never followed by a "
                  "stored one)")
      ->capture_default_str();
  cmd->add_option("--timeout", *timeout,
                  "seconds to wait for a connection, a request or the acks")
      ->capture_default_str();
  cmd->add_option("--give-up", *give_up,
                  "after an error, keep retrying (resuming from the stream) "
                  "for this many seconds without progress; 0: fail at once")
      ->capture_default_str();
  cmd->add_flag("--create-stream", *create,
                "create the stream (file storage, subjects <prefix>.>) if "
                "it does not exist");
  cmd->add_option("--replicas", *replicas, "replicas of a created stream")
      ->capture_default_str();
  cmd->footer(
      "Every record (puts and deletes) is published in sequence order, in\n"
      "batches, with Nats-Msg-Id = <subject>-<first>-<last sequence> so that\n"
      "JetStream drops a batch sent twice, and Nats-Expected-Last-Msg-Id =\n"
      "the previous batch's id so that it stores none after a lost one. On\n"
      "start, and after an error, shipping resumes after the last batch the\n"
      "stream holds for this store. On a stream that also holds other\n"
      "subjects, one batch is in flight at a time (slower); give each store\n"
      "its own stream for full speed.\n"
      "Examples:\n"
      "  recmap ship data.rmap --nats nats://h1:4222,nats://h2:4222 --stream "
      "RECMAP\n"
      "  recmap ship data.rmap --nats nats://127.0.0.1:4222 --stream RECMAP "
      "--once");
  return [=]() {
    o->nats.timeout =
        std::chrono::milliseconds(static_cast<int64_t>(*timeout * 1000));
    o->max_batch_delay = std::chrono::milliseconds(*linger);
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    if (*create) {
      absl::Status s = EnsureStream(o->nats, *replicas);
      if (!s.ok()) return Fail(s);
    }
    const bool tty = ::isatty(2) != 0;
    using Clock = std::chrono::steady_clock;
    uint64_t total = 0;
    uint64_t acked = 0;
    uint64_t resumed = 0;
    bool first = true;
    auto last_progress = Clock::now();
    while (true) {
      absl::Status s;
      absl::StatusOr<std::unique_ptr<Shipper>> sh =
          Shipper::Create(**store, *o);
      if (sh.ok()) {
        if (first) resumed = (*sh)->progress().resumed_after;
        first = false;
        uint64_t base = total;
        s = (*sh)->Run(
            *once, [] { return !g_stop.load(); },
            [&](const ShipperProgress& p) {
              total = base + p.shipped_records;
              acked = p.acked_through;
              last_progress = Clock::now();
              if (tty) {
                uint64_t end =
                    p.store_next_sequence > 0 ? p.store_next_sequence - 1 : 0;
                std::fprintf(
                    stderr,
                    "\rshipped %llu records, acked through %llu, "
                    "lag %llu, resyncs %llu%s   ",
                    static_cast<unsigned long long>(total),
                    static_cast<unsigned long long>(p.acked_through),
                    static_cast<unsigned long long>(
                        end > p.acked_through ? end - p.acked_through : 0),
                    static_cast<unsigned long long>(p.resyncs),
                    p.shared_stream ? " (shared stream)" : "");
              }
            });
        ShipperProgress p = (*sh)->progress();
        total = base + p.shipped_records;
        acked = p.acked_through;
        if (p.shipped_records > 0) last_progress = Clock::now();
      } else {
        s = sh.status();
      }
      if (s.ok()) break;
      bool retryable = !absl::IsNotFound(s) && !absl::IsFailedPrecondition(s) &&
                       !absl::IsInvalidArgument(s) && !absl::IsOutOfRange(s) &&
                       !absl::IsDataLoss(s);
      double idle =
          std::chrono::duration<double>(Clock::now() - last_progress).count();
      if (!retryable || g_stop.load() || idle >= *give_up) {
        if (tty) std::fprintf(stderr, "\n");
        return Fail(s);
      }
      std::fprintf(stderr, "%srecmap: %s; resuming from the stream\n",
                   tty ? "\n" : "", std::string(s.message()).c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    if (tty) std::fprintf(stderr, "\n");
    std::printf(
        "shipped %llu records (resumed after sequence %llu); stream "
        "'%s' holds store %s through sequence %llu\n",
        static_cast<unsigned long long>(total),
        static_cast<unsigned long long>(resumed), o->nats.stream.c_str(),
        UuidString((*store)->info().uuid).c_str(),
        static_cast<unsigned long long>(acked));
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
