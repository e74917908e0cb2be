// One record as a line of JSON, shared by dump --json, tail --json and
// inspect --json: {"seq":..,"id":..,"type":"put","region":..,"offset":..,
// "length":..,"value_base64":"..."} (or "value_hex").
#ifndef RECMAP_TOOLS_RECORD_JSON_H_
#define RECMAP_TOOLS_RECORD_JSON_H_

#include <string>
#include <string_view>

#include "recmap/record.h"

namespace recmap::tool {

enum class PayloadEncoding { kBase64, kHex, kNone };

// Parses "base64", "hex" or "none". Returns false for anything else.
bool ParsePayloadEncoding(std::string_view s, PayloadEncoding* out);

// The record as one JSON object, no trailing newline.
std::string RecordJson(const RecordView& v, PayloadEncoding enc);

// `s` as a JSON string literal, quotes included. Bytes that are not valid
// UTF-8 text are escaped as \u00XX (callers use it for names and paths).
std::string JsonString(std::string_view s);

}  // namespace recmap::tool

#endif  // RECMAP_TOOLS_RECORD_JSON_H_
