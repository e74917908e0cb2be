#include "record_json.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "format.h"

namespace recmap::tool {

bool ParsePayloadEncoding(std::string_view s, PayloadEncoding* out) {
  if (s == "base64") {
    *out = PayloadEncoding::kBase64;
  } else if (s == "hex") {
    *out = PayloadEncoding::kHex;
  } else if (s == "none") {
    *out = PayloadEncoding::kNone;
  } else {
    return false;
  }
  return true;
}

std::string JsonString(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out += '"';
  return out;
}

std::string RecordJson(const RecordView& v, PayloadEncoding enc) {
  std::string out = absl::StrFormat(
      "{\"seq\":%d,\"id\":%d,\"type\":\"%s\",\"region\":%d,\"offset\":%d,"
      "\"length\":%d",
      v.sequence, v.id, RecordTypeName(v.type), v.location.region,
      v.location.file_offset, v.value.size());
  const absl::string_view value(v.value.data(), v.value.size());
  if (enc == PayloadEncoding::kBase64) {
    out += ",\"value_base64\":\"" + absl::Base64Escape(value) + "\"";
  } else if (enc == PayloadEncoding::kHex) {
    out += ",\"value_hex\":\"" + absl::BytesToHexString(value) + "\"";
  }
  out += '}';
  return out;
}

}  // namespace recmap::tool
