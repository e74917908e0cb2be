// recmap stats FILE [--json]
#include <cstdio>

#include "absl/strings/str_format.h"
#include "command.h"
#include "record_json.h"

namespace recmap::tool {
namespace {

double Ratio(uint64_t a, uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

Registration reg(65, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "stats", "Print record counts, sizes and how much compaction would save");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "store file")->required();
  cmd->add_flag("--json", *json, "one JSON object instead of text");
  cmd->footer(
      "records counts every record in the log (superseded versions and\n"
      "tombstones included); live counts ids whose latest record is a put.\n"
      "The live ratio is live payload bytes over all payload bytes: what\n"
      "'recmap compact' keeps.\n"
      "Examples:\n"
      "  recmap stats data.rmap\n"
      "  recmap stats data.rmap --json");
  return [=]() {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    const StoreStats s = (*store)->Stats();
    uint32_t sealed = 0, live_owners = 0;
    for (const RegionStats& r : s.region_stats) {
      sealed += r.sealed;
      live_owners += r.owner_alive;
    }
    const uint64_t superseded = s.records - s.live_records - s.tombstones;
    if (*json) {
      absl::PrintF(
          "{\"path\":%s,\"file_size\":%d,\"region_size\":%d,\"regions\":%d,"
          "\"sealed_regions\":%d,\"live_writers\":%d,\"records\":%d,"
          "\"live_records\":%d,\"tombstones\":%d,\"superseded\":%d,"
          "\"payload_bytes\":%d,\"live_payload_bytes\":%d,"
          "\"next_sequence\":%d,\"live_ratio\":%.4f}\n",
          JsonString(*path), s.file_size, s.region_size, s.regions, sealed,
          live_owners, s.records, s.live_records, s.tombstones, superseded,
          s.payload_bytes, s.live_payload_bytes, s.next_sequence,
          Ratio(s.live_payload_bytes, s.payload_bytes));
    } else {
      absl::PrintF("file          %s (%d bytes)\n", HumanBytes(s.file_size),
                   s.file_size);
      absl::PrintF(
          "regions       %d of %s (%d sealed, %d with a live writer)\n",
          s.regions, HumanBytes(s.region_size), sealed, live_owners);
      absl::PrintF("records       %d (%d live, %d superseded, %d tombstones)\n",
                   s.records, s.live_records, superseded, s.tombstones);
      absl::PrintF("payload       %s, %s live (live ratio %.1f%%)\n",
                   HumanBytes(s.payload_bytes),
                   HumanBytes(s.live_payload_bytes),
                   100 * Ratio(s.live_payload_bytes, s.payload_bytes));
      absl::PrintF("next sequence %d\n", s.next_sequence);
    }
    std::fflush(stdout);
    return ReportUnreadable(**store);
  };
});

}  // namespace
}  // namespace recmap::tool
