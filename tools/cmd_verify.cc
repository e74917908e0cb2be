// recmap verify FILE
#include <cstdio>

#include "absl/strings/str_format.h"
#include "command.h"
#include "progress.h"
#include "verify.h"

namespace recmap::tool {
namespace {

Registration reg(80, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "verify",
      "Check every region header, every record and the index (fsck); "
      "never modifies the file");
  auto path = std::make_shared<std::string>();
  cmd->add_option("file", *path, "store file")->required();
  cmd->footer(
      "A progress bar is drawn on stderr when it is a terminal.\n"
      "Exit status: 0 clean; 3 damaged (each problem printed with its file "
      "offset); 4 the file cannot be opened.\n"
      "Example:\n  recmap verify data.rmap");
  return [=]() {
    ProgressBar bar("verify");
    absl::StatusOr<VerifyReport> r =
        VerifyStore(*path, [&](const VerifyProgress& p) {
          bar.Update(p.records, 0, p.bytes, p.bytes_total);
        });
    bar.Finish();
    if (!r.ok()) return FailOpen(r.status());
    for (const VerifyIssue& i : r->issues) {
      if (i.region >= 0) {
        absl::PrintF("DAMAGE region %d offset %d: %s\n", i.region,
                     i.file_offset, i.what);
      } else {
        absl::PrintF("DAMAGE offset %d: %s\n", i.file_offset, i.what);
      }
    }
    absl::PrintF(
        "%s: %d regions, %d records (%d puts, %d deletes), %s of payload, "
        "%d ids indexed, %d torn tails%s: %s\n",
        *path, r->regions, r->records, r->puts, r->deletes,
        HumanBytes(r->payload_bytes), r->indexed_ids, r->torn_tails,
        r->writers_live ? " (writers live: published part only, index not "
                          "checked)"
                        : "",
        r->clean() ? "clean"
                   : absl::StrFormat("%d problems", r->issues.size()));
    return static_cast<int>(r->clean() ? kExitOk : kExitDamaged);
  };
});

}  // namespace
}  // namespace recmap::tool
