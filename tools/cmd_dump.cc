// recmap dump FILE [--region N] [--limit N] [--preview BYTES] [--json]
//
// Gathering (WalkDump: which records, in which order) is kept apart from
// printing (a DumpPrinter), so that other output formats are one more
// printer.
#include <cstdio>
#include <functional>
#include <optional>

#include "absl/strings/str_format.h"
#include "command.h"
#include "format.h"
#include "record_json.h"

namespace recmap::tool {
namespace {

struct DumpOptions {
  std::optional<uint32_t> region;  // only this region
  uint64_t limit = 0;              // at most this many records; 0: all
};

// The regions a dump covers: [first, end).
struct RegionRange {
  uint32_t first = 0;
  uint32_t end = 0;
};

// Errors: InvalidArgument (no such region).
absl::StatusOr<RegionRange> ResolveRegions(Store& store,
                                           const DumpOptions& opt) {
  const uint32_t regions = store.Stats().regions;
  if (!opt.region) return RegionRange{0, regions};
  if (*opt.region >= regions) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "no region %d (the store has %d)", *opt.region, regions));
  }
  return RegionRange{*opt.region, *opt.region + 1};
}

// Calls `emit` for each record of the regions in `range`, in log order,
// region by region, superseded records and tombstones included, at most
// opt.limit of them.
absl::Status WalkDump(Store& store, const DumpOptions& opt, RegionRange range,
                      const std::function<void(const RecordView&)>& emit) {
  uint64_t emitted = 0;
  for (uint32_t r = range.first; r < range.end; ++r) {
    if (opt.limit != 0 && emitted >= opt.limit) break;
    absl::Status s = store.ForEachInRegion(r, [&](const RecordView& v) {
      emit(v);
      ++emitted;
      return opt.limit == 0 || emitted < opt.limit;
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

class DumpPrinter {
 public:
  virtual ~DumpPrinter() = default;
  virtual void Begin() {}
  virtual void Record(const RecordView& v) = 0;
};

// One line per record under a header line; the payload preview is the last
// column, escaped (see Preview in command.h).
class TextDumpPrinter : public DumpPrinter {
 public:
  explicit TextDumpPrinter(size_t preview) : preview_(preview) {}
  void Begin() override {
    std::printf("%6s %12s %10s %10s %-7s %8s  %s\n", "REGION", "OFFSET",
                "SEQUENCE", "ID", "TYPE", "LENGTH", "PREVIEW");
  }
  void Record(const RecordView& v) override {
    std::string line =
        absl::StrFormat("%6d %12d %10d %10d %-7s %8d", v.location.region,
                        v.location.file_offset, v.sequence, v.id,
                        RecordTypeName(v.type), v.value.size());
    if (!v.value.empty() && preview_ > 0) {
      line += "  ";
      line += Preview(v.value, preview_);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }

 private:
  size_t preview_;
};

// One JSON object per line (record_json.h), no header line.
class JsonDumpPrinter : public DumpPrinter {
 public:
  explicit JsonDumpPrinter(PayloadEncoding enc) : enc_(enc) {}
  void Record(const RecordView& v) override {
    std::string line = RecordJson(v, enc_);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }

 private:
  PayloadEncoding enc_;
};

Registration reg(50, [](CLI::App& app) -> Runner {
  auto* cmd = app.add_subcommand(
      "dump", "Print every record in log order, region by region");
  auto path = std::make_shared<std::string>();
  auto region = std::make_shared<uint32_t>(0);
  auto limit = std::make_shared<uint64_t>(0);
  auto preview = std::make_shared<size_t>(32);
  cmd->add_option("file", *path, "store file")->required();
  CLI::Option* region_opt =
      cmd->add_option("--region", *region, "dump only this region")
          ->check(DecimalU64("region index"));
  cmd->add_option("--limit", *limit, "stop after this many records (0: all)")
      ->capture_default_str()
      ->check(DecimalU64("count"));
  cmd->add_option("--preview", *preview,
                  "payload bytes shown per record (0: none)")
      ->capture_default_str()
      ->check(DecimalU64("byte count"));
  auto json = std::make_shared<bool>(false);
  auto encoding = std::make_shared<std::string>("base64");
  cmd->add_flag("--json", *json,
                "JSON lines: one object per record with seq, id, type, region, "
                "offset, length and the payload");
  cmd->add_option("--encoding", *encoding,
                  "payload encoding with --json: base64, hex or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"base64", "hex", "none"}));
  cmd->footer(
      "Columns: region, file offset of the record header, sequence, id,\n"
      "type (put, delete, padding), payload length, payload preview\n"
      "(non-printable bytes as \\xHH, '...' when cut).\n"
      "Examples:\n"
      "  recmap dump data.rmap\n"
      "  recmap dump data.rmap --region 2 --limit 10 --preview 64\n"
      "  recmap dump data.rmap --json --encoding hex | jq .seq");
  return [=]() {
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenForTool(*path, /*read_only=*/true);
    if (!store.ok()) return FailOpen(store.status());
    DumpOptions opt;
    if (region_opt->count() > 0) opt.region = *region;
    opt.limit = *limit;
    absl::StatusOr<RegionRange> range = ResolveRegions(**store, opt);
    if (!range.ok()) return Fail(range.status());
    PayloadEncoding enc = PayloadEncoding::kBase64;
    (void)ParsePayloadEncoding(*encoding, &enc);
    TextDumpPrinter text(*preview);
    JsonDumpPrinter json_printer(enc);
    DumpPrinter& printer =
        *json ? static_cast<DumpPrinter&>(json_printer) : text;
    printer.Begin();
    absl::Status s = WalkDump(**store, opt, *range,
                              [&](const RecordView& v) { printer.Record(v); });
    std::fflush(stdout);
    if (!s.ok()) return Fail(s);
    return ReportUnreadable(**store, opt.region ? int64_t{*opt.region} : -1);
  };
});

}  // namespace
}  // namespace recmap::tool
