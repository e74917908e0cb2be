// recmap tail FILE [--from SEQ] [--json] [--count N] [--idle-timeout S]
//                  [--wait park|spin|backoff]
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "command.h"
#include "format.h"
#include "recmap/tailer.h"
#include "record_json.h"

namespace recmap::tool {
namespace {

std::atomic<bool> g_stop{false};
// The tailer a signal stops (RequestStop is async-signal-safe).
std::atomic<Tailer*> g_tailer{nullptr};
void OnSignal(int) {
  g_stop.store(true);
  if (Tailer* t = g_tailer.load()) t->RequestStop();
}

Registration reg(70, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "tail", "Follow new records from every writer, like tail -f");
  auto path = std::make_shared<std::string>();
  auto from = std::make_shared<uint64_t>(0);
  auto json = std::make_shared<bool>(false);
  auto encoding = std::make_shared<std::string>("base64");
  auto count = std::make_shared<uint64_t>(0);
  auto idle = std::make_shared<double>(0);
  auto no_deletes = std::make_shared<bool>(false);
  auto preview = std::make_shared<size_t>(64);
  auto wait = std::make_shared<std::string>("park");
  cmd->add_option("file", *path, "store file")->required();
  cmd->add_option("--from", *from,
                  "first sequence number to print (default: only records "
                  "written from now on; 1: the whole log)")
      ->check(DecimalU64("sequence number"));
  cmd->add_flag("--json", *json, "one JSON object per line");
  cmd->add_option("--encoding", *encoding,
                  "payload encoding in JSON: base64, hex or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"base64", "hex", "none"}));
  cmd->add_option("-n,--count", *count,
                  "exit after this many records (0: never)")
      ->capture_default_str()
      ->check(DecimalU64("count"));
  cmd->add_option("--idle-timeout", *idle,
                  "exit after this many seconds without a record (0: never)")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            double v = 0;
            if (!absl::SimpleAtod(s, &v) || !(v >= 0) || std::isinf(v))
              return "'" + s + "' is not a non-negative number of seconds";
            return std::string();
          },
          "SECONDS"));
  cmd->add_flag("--no-deletes", *no_deletes, "do not print tombstones");
  cmd->add_option("--preview", *preview, "payload bytes shown in text mode")
      ->capture_default_str()
      ->check(DecimalU64("byte count"));
  cmd->add_option("--wait", *wait,
                  "how to wait for records: park (sleep until a writer "
                  "wakes us; no CPU when idle), spin (poll: lowest latency, "
                  "one core at 100%), backoff (spin, yield, then park)")
      ->capture_default_str()
      ->check(CLI::IsMember({"park", "spin", "backoff"}));
  cmd->footer(
      "Records are printed in sequence order, from every writer process,\n"
      "as they are published; by default the command blocks (no polling)\n"
      "in between (--wait spin polls instead, for the lowest latency).\n"
      "On Ctrl-C it prints the sequence number to resume from (--from).\n"
      "Text columns: sequence, id, type, length, payload preview.\n"
      "Examples:\n"
      "  recmap tail data.rmap\n"
      "  recmap tail data.rmap --from 1 --json --encoding hex\n"
      "  recmap tail data.rmap --from 1000 --count 10 --idle-timeout 5\n"
      "  recmap tail data.rmap --wait spin");
  return [=]() {
    PayloadEncoding enc = PayloadEncoding::kBase64;
    (void)ParsePayloadEncoding(*encoding, &enc);
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    TailerOptions to;
    to.from_sequence = *from;
    to.include_deletes = !*no_deletes;
    to.wait = *wait == "spin"      ? WaitStrategy::kSpin
              : *wait == "backoff" ? WaitStrategy::kBackoff
                                   : WaitStrategy::kPark;
    absl::StatusOr<std::unique_ptr<Tailer>> tailer =
        Tailer::Create(**store, to);
    if (!tailer.ok()) return Fail(tailer.status());
    g_tailer.store(tailer->get());
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGPIPE, &sa, nullptr);

    using Clock = std::chrono::steady_clock;
    auto last = Clock::now();
    uint64_t printed = 0;
    while (!g_stop.load()) {
      // Short slices so that a signal is noticed promptly.
      absl::StatusOr<std::optional<RecordView>> got =
          (*tailer)->Next(std::chrono::milliseconds(200));
      if (absl::IsCancelled(got.status())) break;  // a signal
      if (!got.ok()) {
        g_tailer.store(nullptr);
        return Fail(got.status());
      }
      if (!got->has_value()) {
        if (*idle > 0 &&
            std::chrono::duration<double>(Clock::now() - last).count() >= *idle)
          break;
        continue;
      }
      last = Clock::now();
      const RecordView& v = **got;
      std::string line;
      if (*json) {
        line = RecordJson(v, enc);
      } else {
        line = absl::StrFormat("%d %d %s %d", v.sequence, v.id,
                               RecordTypeName(v.type), v.value.size());
        if (!v.value.empty() && *preview > 0)
          line += " " + Preview(v.value, *preview);
      }
      line += '\n';
      if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size() ||
          std::fflush(stdout) != 0)
        break;  // the reader went away
      if (*count != 0 && ++printed >= *count) break;
    }
    g_tailer.store(nullptr);
    if (g_stop.load()) {
      std::fprintf(stderr, "recmap: stopped; resume with --from %llu\n",
                   static_cast<unsigned long long>((*tailer)->next_sequence()));
    }
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
