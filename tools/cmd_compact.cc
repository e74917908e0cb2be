// recmap compact FILE [-o OUT] [--region-size N] [--quiet]
#include <cstdio>

#include "command.h"
#include "compaction.h"
#include "progress.h"
#include "recmap/compaction.h"

namespace recmap::tool {
namespace {

Registration reg(80, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "compact",
      "Rewrite a store keeping only the latest live version of each id");
  auto path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto region_size = std::make_shared<uint64_t>(0);
  auto quiet = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "store file to compact")->required();
  cmd->add_option("-o,--output", *out,
                  "write the compacted store here (must not exist) and leave "
                  "FILE untouched");
  cmd->add_option("--region-size", *region_size,
                  "region size of the new store (default: FILE's)")
      ->check(DecimalU64("byte count"));
  cmd->add_flag("-q,--quiet", *quiet, "no progress bar and no summary");
  cmd->footer(
      "Superseded versions, deleted ids and their tombstones are dropped;\n"
      "ids and sequence numbers are kept. The new store is written beside\n"
      "FILE as FILE.compact-tmp, synced, verified against FILE and renamed\n"
      "over it: a crash at any point leaves FILE complete (old or new).\n"
      "Refuses (exit 6) while another process has FILE open for writing;\n"
      "writers that open FILE during the compaction wait for it.\n"
      "A progress bar is drawn on stderr when it is a terminal.\n"
      "Examples:\n"
      "  recmap compact data.rmap\n"
      "  recmap compact data.rmap -o data-compacted.rmap");
  return [=]() {
    CompactionOptions co;
    co.output = *out;
    co.region_size = *region_size;
    ProgressBar bar("compact", !*quiet);
    co.progress = [&](const CompactionProgress& p) {
      bar.Update(p.records_done, p.records_total, p.bytes_done, p.bytes_total);
    };
    absl::StatusOr<CompactionResult> r = Compact(*path, co);
    bar.Finish();
    if (!r.ok()) {
      if (IsStoreBusy(r.status())) {
        std::fprintf(stderr, "recmap: %s\n",
                     std::string(r.status().message()).c_str());
        return static_cast<int>(kExitBusy);
      }
      return FailOpen(r.status());
    }
    if (*quiet) return static_cast<int>(kExitOk);
    const double saved = r->bytes_before == 0
                             ? 0
                             : 100.0 *
                                   (static_cast<double>(r->bytes_before) -
                                    static_cast<double>(r->bytes_after)) /
                                   static_cast<double>(r->bytes_before);
    std::printf("compacted %s in %s\n", r->path.c_str(),
                HumanDuration(r->seconds).c_str());
    std::printf("  size     %s -> %s (%.1f%% smaller)\n",
                HumanBytes(r->bytes_before).c_str(),
                HumanBytes(r->bytes_after).c_str(), saved);
    std::printf(
        "  records  %llu -> %llu kept, %llu dropped "
        "(superseded versions and tombstones)\n",
        static_cast<unsigned long long>(r->records_before),
        static_cast<unsigned long long>(r->records_kept),
        static_cast<unsigned long long>(r->records_dropped));
    std::printf(
        "  copied   %s of live payload, %s/s\n",
        HumanBytes(r->payload_bytes).c_str(),
        HumanBytes(static_cast<uint64_t>(
                       r->seconds > 0 ? r->payload_bytes / r->seconds : 0))
            .c_str());
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
