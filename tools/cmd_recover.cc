// recmap recover FILE [--mode tolerate|absolute|salvage] [--dry-run]
#include <cstdio>
#include <map>

#include "absl/strings/str_format.h"
#include "command.h"
#include "progress.h"
#include "recover.h"

namespace recmap::tool {
namespace {

Registration reg(85, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "recover",
      "Recover a store after a crash and report what was dropped, by region "
      "and offset");
  auto path = std::make_shared<std::string>();
  auto mode = std::make_shared<RecoveryMode>(RecoveryMode::kTolerateTornTail);
  auto dry_run = std::make_shared<bool>(false);
  cmd->add_option("file", *path, "store file")->required();
  const std::map<std::string, RecoveryMode> modes = {
      {"tolerate", RecoveryMode::kTolerateTornTail},
      {"absolute", RecoveryMode::kAbsoluteConsistency},
      {"salvage", RecoveryMode::kSalvage}};
  cmd->add_option("--mode", *mode,
                  "tolerate: cut torn tails (default); absolute: refuse any "
                  "damage; salvage: skip damage, keep every valid record")
      ->transform(CLI::CheckedTransformer(modes, CLI::ignore_case));
  cmd->add_flag("--dry-run", *dry_run,
                "only report what would be dropped; never modify the file");
  cmd->footer(
      "A progress bar is drawn on stderr when it is a terminal.\n"
      "Exit status: 0 recovered (or nothing to do); 3 absolute mode found "
      "damage, or damage below a durable tail; 4 the file cannot be "
      "opened; 3 also when writers are live (without --dry-run).\n"
      "Example:\n  recmap recover data.rmap --mode salvage --dry-run");
  return [=]() {
    RecoverOptions o;
    o.mode = *mode;
    o.dry_run = *dry_run;
    ProgressBar bar("recover");
    o.progress = [&](const VerifyProgress& p) {
      bar.Update(p.records, 0, p.bytes, p.bytes_total);
    };
    absl::StatusOr<RecoverResult> r = RecoverStore(*path, o);
    bar.Finish();
    if (!r.ok()) return FailOpen(r.status());
    const char* verb = r->dry_run ? "would drop" : "dropped";
    for (const RecoverDrop& d : r->drops) {
      absl::PrintF("region %d offset %d: %s %d bytes (%s)%s\n", d.region,
                   d.file_offset, verb, d.bytes, d.why,
                   d.published ? " [inside the published log]" : "");
    }
    if (r->trailing_bytes != 0) {
      absl::PrintF("%s %d bytes past the last whole region\n",
                   r->dry_run ? "would restore" : "restored",
                   r->trailing_bytes);
    }
    absl::PrintF("%s (%s mode%s): %d regions, %d records kept, %d ranges %s\n",
                 *path, RecoveryModeName(r->mode),
                 r->dry_run ? ", dry run" : "", r->regions, r->records_kept,
                 r->drops.size(), verb);
    for (const std::string& d : r->remaining_damage) {
      absl::PrintF("DAMAGE REMAINS %s\n", d);
    }
    if (!r->remaining_damage.empty()) {
      absl::PrintF(
          "%s: %d problems remain that this mode does not repair (see "
          "`recmap verify`)\n",
          *path, r->remaining_damage.size());
      return static_cast<int>(kExitDamaged);
    }
    return static_cast<int>(kExitOk);
  };
});

}  // namespace
}  // namespace recmap::tool
