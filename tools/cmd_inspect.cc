// recmap inspect FILE [--json]
//
// Gathering (InspectReport) is kept apart from printing, so that other
// output formats are one more printing function.
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "command.h"
#include "format.h"
#include "record_json.h"
#include "store_rep.h"

namespace recmap::tool {
namespace {

struct InspectReport {
  StoreInfo info;
  StoreStats stats;
};

InspectReport GatherInspect(Store& store) {
  InspectReport r;
  r.info = store.info();
  r.stats = store.Stats();
  return r;
}

std::string CreatedString(uint64_t unix_nanos) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC",
                          absl::FromUnixNanos(static_cast<int64_t>(unix_nanos)),
                          absl::UTCTimeZone());
}

// "12345 alive", "12345 dead", "-" (released cleanly) or "scrub-pending"
// (released, but since the last recovery nobody vouches that the bytes past
// the tail are zero: the next claimer zeroes them first).
std::string OwnerString(const RegionStats& r) {
  if (r.owner_pid == 0) return r.owner_alive ? "alive" : "-";
  if (r.owner_pid == kScrubOwner) return "scrub-pending";
  return absl::StrFormat("%d %s", r.owner_pid,
                         r.owner_alive ? "alive" : "dead");
}

void PrintInspectText(const InspectReport& r, std::FILE* out) {
  const StoreInfo& i = r.info;
  const StoreStats& s = r.stats;
  absl::FPrintF(out, "path:            %s\n", i.path);
  absl::FPrintF(out, "format version:  %d\n", i.format_version);
  absl::FPrintF(out, "uuid:            %s\n", UuidString(i.uuid));
  absl::FPrintF(out, "region size:     %d (%s)\n", i.region_size,
                HumanBytes(i.region_size));
  absl::FPrintF(out, "created:         %s\n",
                CreatedString(i.created_unix_nanos));
  absl::FPrintF(out, "file size:       %d (%s)\n", s.file_size,
                HumanBytes(s.file_size));
  absl::FPrintF(out, "regions:         %d\n", s.regions);
  absl::FPrintF(out, "next sequence:   %d\n", s.next_sequence);
  absl::FPrintF(out, "\n%6s %12s %18s %10s %10s %6s %8s %6s  %s\n", "REGION",
                "OFFSET", "EPOCH", "COMMITTED", "DURABLE", "FILL", "RECORDS",
                "SEALED", "OWNER");
  for (const RegionStats& g : s.region_stats) {
    if (!g.formatted) {
      absl::FPrintF(out, "%6d %12d %18s\n", g.index, g.file_offset,
                    "unformatted");
      continue;
    }
    // Fill counts every byte below the committed tail: records, and the
    // zero gaps that page closing leaves after a Sync().
    const uint64_t used = g.committed_tail > kRegionDataOffset
                              ? g.committed_tail - kRegionDataOffset
                              : 0;
    const double fill = g.capacity_bytes == 0
                            ? 0.0
                            : 100.0 * static_cast<double>(used) /
                                  static_cast<double>(g.capacity_bytes);
    absl::FPrintF(
        out, "%6d %12d 0x%016x %10d %10s %5.1f%% %8d %6s  %s\n", g.index,
        g.file_offset, g.epoch, g.committed_tail,
        g.durable_tail_valid ? absl::StrFormat("%d", g.durable_tail) : "-",
        fill, g.records, g.sealed ? "yes" : "no", OwnerString(g));
  }
  absl::FPrintF(out,
                "\nrecords: %d  live: %d  tombstones: %d  payload bytes: %d  "
                "live payload bytes: %d\n",
                s.records, s.live_records, s.tombstones, s.payload_bytes,
                s.live_payload_bytes);
}

// JSON lines: one "store" object, then one "region" object per region.
void PrintInspectJson(const InspectReport& r, std::FILE* out) {
  const StoreInfo& i = r.info;
  const StoreStats& s = r.stats;
  absl::FPrintF(out,
                "{\"kind\":\"store\",\"path\":%s,\"format_version\":%d,"
                "\"uuid\":\"%s\",\"region_size\":%d,\"created_unix_nanos\":%d,"
                "\"file_size\":%d,\"regions\":%d,\"next_sequence\":%d,"
                "\"records\":%d,\"live_records\":%d,\"tombstones\":%d,"
                "\"payload_bytes\":%d,\"live_payload_bytes\":%d}\n",
                JsonString(i.path), i.format_version, UuidString(i.uuid),
                i.region_size, i.created_unix_nanos, s.file_size, s.regions,
                s.next_sequence, s.records, s.live_records, s.tombstones,
                s.payload_bytes, s.live_payload_bytes);
  for (const RegionStats& g : s.region_stats) {
    absl::FPrintF(out,
                  "{\"kind\":\"region\",\"index\":%d,\"file_offset\":%d,"
                  "\"formatted\":%s,\"epoch\":%d,\"committed_tail\":%d,"
                  "\"durable_tail\":%d,\"durable_tail_valid\":%s,\"sealed\":%s,"
                  "\"records\":%d,\"fill_bytes\":%d,\"capacity_bytes\":%d,"
                  "\"owner_pid\":%d,\"owner_alive\":%s,\"owner\":%s}\n",
                  g.index, g.file_offset, g.formatted ? "true" : "false",
                  g.epoch, g.committed_tail, g.durable_tail,
                  g.durable_tail_valid ? "true" : "false",
                  g.sealed ? "true" : "false", g.records, g.fill_bytes,
                  g.capacity_bytes, g.owner_pid,
                  g.owner_alive ? "true" : "false", JsonString(OwnerString(g)));
  }
}

Registration reg(60, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "inspect", "Print the file header, the region table and totals");
  auto path = std::make_shared<std::string>();
  cmd->add_option("file", *path, "store file")->required();
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json,
                "JSON lines: a \"store\" object, then one \"region\" object "
                "per region");
  cmd->footer(
      "Region table: committed and durable tails are offsets from the\n"
      "region's start ('-': no valid durable tail yet); fill is the bytes\n"
      "below the committed tail over the region's record capacity; owner is\n"
      "the pid of the writer holding the region and whether it is alive\n"
      "('-': released cleanly, 'scrub-pending': free, its tail is zeroed\n"
      "when next claimed). Records count every record in the log, padding\n"
      "included; live and tombstones count ids.\n"
      "Examples:\n"
      "  recmap inspect data.rmap\n"
      "  recmap inspect data.rmap --json");
  return [=]() {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    if (*json) {
      PrintInspectJson(GatherInspect(**store), stdout);
    } else {
      PrintInspectText(GatherInspect(**store), stdout);
    }
    std::fflush(stdout);
    return ReportUnreadable(**store);
  };
});

}  // namespace
}  // namespace recmap::tool
