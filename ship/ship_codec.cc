// The batch codec: bounds-checked little-endian encoding of ShipBatch.
#include <cstring>

#include "absl/strings/str_format.h"
#include "recmap/shipper.h"

namespace recmap {
namespace {

constexpr uint32_t kBatchMagic = 0x31424d52;  // "RMB1" little-endian
constexpr size_t kBatchHeaderSize = 48;
constexpr size_t kRecordHeaderSize = 21;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

std::string UuidHex(const std::array<uint8_t, 16>& uuid) {
  std::string s;
  for (uint8_t b : uuid) s += absl::StrFormat("%02x", b);
  return s;
}

void EncodeShipBatchHeader(const ShipBatch& batch, std::string* out) {
  PutU32(out, kBatchMagic);
  PutU32(out, static_cast<uint32_t>(batch.records.size()));
  out->append(reinterpret_cast<const char*>(batch.uuid.data()), 16);
  PutU64(out, batch.first_sequence);
  PutU64(out, batch.last_sequence);
  PutU64(out, batch.previous_last_sequence);
}

void EncodeShipRecord(const ShipRecord& r, std::string* out) {
  PutU64(out, r.id);
  PutU64(out, r.sequence);
  out->push_back(static_cast<char>(r.type));
  PutU32(out, static_cast<uint32_t>(r.value.size()));
  out->append(r.value);
}

absl::Status DecodeShipBatch(std::string_view data, ShipBatch* batch) {
  if (data.size() < kBatchHeaderSize)
    return absl::DataLossError(absl::StrFormat(
        "batch of %d bytes is shorter than its header", data.size()));
  const char* p = data.data();
  if (GetLE(p, 4) != kBatchMagic)
    return absl::DataLossError("not a recmap batch (bad magic)");
  uint64_t count = GetLE(p + 4, 4);
  std::memcpy(batch->uuid.data(), p + 8, 16);
  batch->first_sequence = GetLE(p + 24, 8);
  batch->last_sequence = GetLE(p + 32, 8);
  batch->previous_last_sequence = GetLE(p + 40, 8);
  batch->records.clear();
  size_t off = kBatchHeaderSize;
  uint64_t prev = batch->previous_last_sequence;
  for (uint64_t i = 0; i < count; ++i) {
    if (data.size() - off < kRecordHeaderSize)
      return absl::DataLossError(
          absl::StrFormat("batch truncated in record %d at byte %d", i, off));
    ShipRecord r;
    r.id = GetLE(p + off, 8);
    r.sequence = GetLE(p + off + 8, 8);
    uint8_t type = static_cast<uint8_t>(p[off + 16]);
    uint64_t len = GetLE(p + off + 17, 4);
    off += kRecordHeaderSize;
    if (type != static_cast<uint8_t>(RecordType::kPut) &&
        type != static_cast<uint8_t>(RecordType::kDelete))
      return absl::DataLossError(
          absl::StrFormat("record %d has type %d", i, type));
    if (data.size() - off < len)
      return absl::DataLossError(
          absl::StrFormat("record %d value overruns the batch", i));
    if (r.sequence <= prev)
      return absl::DataLossError(absl::StrFormat(
          "record %d sequence %d does not follow %d", i, r.sequence, prev));
    prev = r.sequence;
    r.type = static_cast<RecordType>(type);
    r.value = data.substr(off, len);
    off += len;
    batch->records.push_back(r);
  }
  if (off != data.size())
    return absl::DataLossError("trailing bytes after the batch's records");
  if (count == 0 || batch->records.front().sequence != batch->first_sequence ||
      batch->records.back().sequence != batch->last_sequence)
    return absl::DataLossError("batch header does not match its records");
  return absl::OkStatus();
}

}  // namespace recmap
