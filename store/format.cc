#include "format.h"

// Inlined: RecordChecksum runs once per record on the append and scan
// paths, where the call into the shared library and its generic
// length dispatch cost about as much as hashing a 100-byte record.
#define XXH_INLINE_ALL
#include <xxhash.h>

#if defined(__x86_64__)
// libxxhash's runtime-dispatched XXH3 (AVX2 / AVX-512 when the CPU has
// them; the same hash values on every path, XXH3 being defined by its
// scalar reference). Inlined XXH3 is compiled for baseline x86-64 (SSE2),
// which halves the speed of long inputs.
extern "C" unsigned long long XXH3_64bits_withSeed_dispatch(
    const void* input, size_t len, unsigned long long seed);
#endif

#include <cstring>

#include "absl/strings/str_cat.h"
#include "coding.h"

namespace recmap {

uint64_t HeaderChecksum(const char* p, size_t n) { return XXH3_64bits(p, n); }

void FileHeader::EncodeTo(char* dst) const {
  std::memset(dst, 0, kEncodedSize);
  std::memcpy(dst + kMagicOffset, kFileMagic, sizeof(kFileMagic));
  EncodeFixed32(dst + kVersionOffset, format_version);
  EncodeFixed32(dst + kFlagsOffset, flags);
  std::memcpy(dst + kUuidOffset, uuid.data(), uuid.size());
  EncodeFixed64(dst + kRegionSizeOffset, region_size);
  EncodeFixed64(dst + kFirstRegionFieldOffset, first_region_offset);
  EncodeFixed64(dst + kCreatedOffset, created_unix_nanos);
  EncodeFixed64(dst + kReservedOffset, 0);
  EncodeFixed64(dst + kChecksumOffset, HeaderChecksum(dst, kChecksumOffset));
}

absl::Status FileHeader::DecodeFrom(const char* src, size_t size) {
  if (size < kEncodedSize) {
    return absl::DataLossError(absl::StrCat("truncated file header: ", size,
                                            " bytes, need ", kEncodedSize));
  }
  Decoder d(src, kEncodedSize);
  char magic[8];
  uint64_t reserved = 0, checksum = 0;
  bool ok = d.GetBytes(magic, 8) && d.GetFixed32(&format_version) &&
            d.GetFixed32(&flags) && d.GetBytes(uuid.data(), 16) &&
            d.GetFixed64(&region_size) && d.GetFixed64(&first_region_offset) &&
            d.GetFixed64(&created_unix_nanos) && d.GetFixed64(&reserved) &&
            d.GetFixed64(&checksum);
  if (!ok) return absl::DataLossError("truncated file header");
  if (std::memcmp(magic, kFileMagic, 8) != 0) {
    return absl::DataLossError("not a recmap store: wrong magic at offset 0");
  }
  // The version is checked before the checksum: a newer version may have
  // changed how the header is checksummed.
  if (format_version > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "format version ", format_version,
        " is newer than this build supports (", kFormatVersion, ")"));
  }
  if (format_version == 0) {
    return absl::DataLossError("file header: format version 0 at offset 8");
  }
  if (checksum != HeaderChecksum(src, kChecksumOffset)) {
    return absl::DataLossError("file header checksum mismatch at offset 64");
  }
  if (flags != 0) {
    return absl::DataLossError(
        absl::StrCat("file header: unknown flags ", flags, " at offset 12"));
  }
  if (region_size < kMinRegionSize || region_size > kMaxRegionSize ||
      region_size % kPageSize != 0) {
    return absl::DataLossError(absl::StrCat("file header: invalid region size ",
                                            region_size, " at offset 32"));
  }
  if (first_region_offset != kFirstRegionOffset) {
    return absl::DataLossError(
        absl::StrCat("file header: invalid first region offset ",
                     first_region_offset, " at offset 40"));
  }
  if (reserved != 0) {
    return absl::DataLossError("file header: reserved field not zero");
  }
  return absl::OkStatus();
}

void RegionHeader::EncodeTo(char* dst) const {
  std::memset(dst, 0, kEncodedSize);
  EncodeFixed32(dst + kMagicOffset, kRegionMagic);
  EncodeFixed32(dst + kIndexOffset, index);
  EncodeFixed64(dst + kEpochOffset, epoch);
  EncodeFixed64(dst + kRegionSizeOffset, region_size);
  std::memcpy(dst + kUuidOffset, file_uuid.data(), file_uuid.size());
  EncodeFixed64(dst + kChecksumOffset, HeaderChecksum(dst, kChecksumOffset));
}

absl::Status RegionHeader::DecodeFrom(const char* src, size_t size) {
  Decoder d(src, size);
  uint32_t magic = 0;
  uint64_t checksum = 0;
  if (!(d.GetFixed32(&magic) && d.GetFixed32(&index) && d.GetFixed64(&epoch) &&
        d.GetFixed64(&region_size) && d.GetBytes(file_uuid.data(), 16) &&
        d.GetFixed64(&checksum))) {
    return absl::DataLossError("truncated region header");
  }
  if (magic != kRegionMagic) {
    return absl::DataLossError("region header: wrong magic");
  }
  if (checksum != HeaderChecksum(src, kChecksumOffset)) {
    return absl::DataLossError("region header: checksum mismatch");
  }
  if (epoch == 0) return absl::DataLossError("region header: epoch 0");
  return absl::OkStatus();
}

uint64_t RegionSeed(const std::array<uint8_t, 16>& uuid, uint32_t index,
                    uint64_t epoch) {
  char buf[28];
  std::memcpy(buf, uuid.data(), 16);
  EncodeFixed32(buf + 16, index);
  EncodeFixed64(buf + 20, epoch);
  return XXH3_64bits(buf, sizeof(buf));
}

uint64_t RecordChecksum(const char* record, uint32_t length, uint64_t seed) {
  const char* p = record + kRecordChecksummedOffset;
  const size_t n =
      kRecordHeaderSize - kRecordChecksummedOffset + uint64_t{length};
#if defined(__x86_64__)
  // Up to 240 bytes XXH3 is scalar code, fastest inlined; past that it is
  // a vector loop, where the CPU's widest vectors pay for the call.
  if (n > XXH3_MIDSIZE_MAX) return XXH3_64bits_withSeed_dispatch(p, n, seed);
#endif
  return XXH3_64bits_withSeed(p, n, seed);
}

uint64_t DurableCheck(uint64_t durable_tail, uint64_t seed) {
  char buf[8];
  EncodeFixed64(buf, durable_tail);
  return XXH3_64bits_withSeed(buf, 8, seed ^ 0x64757261626c65ULL);
}

const char* RecordTypeName(RecordType type) {
  switch (type) {
    case RecordType::kZero:
      return "zero";
    case RecordType::kPut:
      return "put";
    case RecordType::kDelete:
      return "delete";
    case RecordType::kPadding:
      return "padding";
  }
  return "unknown";
}

absl::Status CheckPayloadSize(uint64_t length, uint64_t region_size) {
  const uint64_t max = MaxPayload(region_size);
  if (length <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "value of ", length, " bytes exceeds the largest record a region of ",
      region_size, " bytes holds (", max, " bytes)"));
}

}  // namespace recmap
