#include "command.h"

#include <cstdio>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "store_peer.h"
#include "store_rep.h"

namespace recmap::tool {

std::vector<std::pair<int, Setup>>& Registry() {
  static std::vector<std::pair<int, Setup>> r;
  return r;
}

Registration::Registration(int order, Setup setup) {
  Registry().emplace_back(order, std::move(setup));
}

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
      return kExitUsage;
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kFailedPrecondition:
      return kExitDamaged;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return kExitIo;
    default:
      return kExitInternal;
  }
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "recmap: %s\n", std::string(s.message()).c_str());
  return ExitCodeFor(s);
}

int FailOpen(const absl::Status& s) {
  const int code = Fail(s);
  return absl::IsNotFound(s) ? static_cast<int>(kExitIo) : code;
}

absl::StatusOr<std::unique_ptr<Store>> OpenForTool(const std::string& path,
                                                   bool read_only,
                                                   bool create) {
  Options o;
  o.read_only = read_only;
  o.create_if_missing = create;
  // A tool writes a record or two and exits: populating megabytes of pages
  // ahead of its tail would only dirty pages for nothing.
  o.prefault_bytes = 0;
  return Store::Open(path, o);
}

int ReportUnreadable(Store& store, int64_t region) {
  // From the open's recovery report: cheaper than Stats() (no index walk).
  StoreRep& rep = StorePeer::Rep(store);
  const RecoveryReport& report = store.last_recovery();
  if (report.unreadable_bytes == 0) return kExitOk;
  if (region >= 0 &&
      (region >= rep.known_regions() ||
       rep.region(static_cast<uint32_t>(region)).unreadable_bytes == 0)) {
    return kExitOk;
  }
  for (const std::string& m : report.unreadable) {
    std::fprintf(stderr, "recmap: %s\n", m.c_str());
  }
  return kExitDamaged;
}

CLI::Validator DecimalU64(const std::string& name) {
  return CLI::Validator(
      [name](std::string& s) -> std::string {
        uint64_t v = 0;
        const bool digits = !s.empty() && s.find_first_not_of("0123456789") ==
                                              std::string::npos;
        if (!digits || !absl::SimpleAtoi(s, &v)) {
          return "'" + s + "' is not an unsigned 64-bit decimal " + name;
        }
        return std::string();
      },
      "UINT");
}

CLI::Option* AddIdArgument(CLI::App* cmd, uint64_t* id) {
  return cmd->add_option("id", *id, "record id (0 to 2^64-1, decimal)")
      ->required()
      ->check(DecimalU64("id"));
}

std::string HumanBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return absl::StrFormat("%d B", bytes);
  return absl::StrFormat("%.1f %s", v, kUnits[u]);
}

std::string Preview(std::string_view value, size_t max) {
  std::string out;
  size_t n = value.size() < max ? value.size() : max;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += absl::StrFormat("\\x%02x", c);
    }
  }
  if (value.size() > max) out += "...";
  return out;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += absl::StrFormat("%02x", c);
  return out;
}

std::string UuidString(const std::array<uint8_t, 16>& u) {
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
      u[12], u[13], u[14], u[15]);
}

}  // namespace recmap::tool
