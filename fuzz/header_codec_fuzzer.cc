// Fuzzes FileHeader and RegionHeader: decoding arbitrary bytes (held in a
// buffer of exactly the given length, so ASan sees any over-read) and the
// encode -> decode round trip of arbitrary field values.
//
// Input: flags u8 | file header length u8 | that many bytes | region header
// length u8 | that many bytes | file header fields (version u32, flags u32,
// uuid 16, region size u64, first region offset u64, created u64) | region
// header fields (index u32, epoch u64, region size u64, uuid 16).
// Flag bit 0 (bit 1) rewrites the file (region) header checksum over the
// mutated bytes, so that mutations reach the field checks behind it.
//
// Invariants: whatever decodes re-encodes to exactly the same bytes and has
// fields inside their documented ranges; failures are DataLoss, or
// FailedPrecondition for a newer version; encoding valid fields always
// decodes to the same fields.
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "coding.h"
#include "format.h"
#include "fuzz_util.h"

namespace recmap::fuzz {
namespace {

bool ValidRegionSize(uint64_t rs) {
  return rs >= kMinRegionSize && rs <= kMaxRegionSize && rs % kPageSize == 0;
}

void DecodeFileHeader(std::string_view bytes, bool repair) {
  std::unique_ptr<char[]> buf(new char[bytes.size() + 1]);
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  if (repair && bytes.size() >= FileHeader::kEncodedSize) {
    EncodeFixed64(buf.get() + 64, XXH3_64bits(buf.get(), 64));
  }
  FileHeader h;
  absl::Status s = h.DecodeFrom(buf.get(), bytes.size());
  if (!s.ok()) {
    FUZZ_CHECK(absl::IsDataLoss(s) || (absl::IsFailedPrecondition(s) &&
                                       h.format_version > kFormatVersion),
               "unexpected error code: " + s.ToString());
    return;
  }
  FUZZ_CHECK(bytes.size() >= FileHeader::kEncodedSize,
             "decoded a truncated file header");
  FUZZ_CHECK(h.format_version >= 1 && h.format_version <= kFormatVersion &&
                 h.flags == 0 && ValidRegionSize(h.region_size) &&
                 h.first_region_offset == kFirstRegionOffset,
             "decoded a file header with an out-of-range field");
  char enc[FileHeader::kEncodedSize];
  h.EncodeTo(enc);
  FUZZ_CHECK(std::memcmp(enc, buf.get(), sizeof(enc)) == 0,
             "file header does not re-encode to its bytes");
}

void DecodeRegionHeader(std::string_view bytes, bool repair) {
  std::unique_ptr<char[]> buf(new char[bytes.size() + 1]);
  std::memcpy(buf.get(), bytes.data(), bytes.size());
  if (repair && bytes.size() >= RegionHeader::kEncodedSize) {
    EncodeFixed64(buf.get() + 40, XXH3_64bits(buf.get(), 40));
  }
  RegionHeader h;
  absl::Status s = h.DecodeFrom(buf.get(), bytes.size());
  if (!s.ok()) {
    FUZZ_CHECK(absl::IsDataLoss(s), "unexpected error code: " + s.ToString());
    return;
  }
  FUZZ_CHECK(bytes.size() >= RegionHeader::kEncodedSize,
             "decoded a truncated region header");
  FUZZ_CHECK(h.epoch != 0, "decoded a region header with epoch 0");
  char enc[RegionHeader::kEncodedSize];
  h.EncodeTo(enc);
  FUZZ_CHECK(std::memcmp(enc, buf.get(), sizeof(enc)) == 0,
             "region header does not re-encode to its bytes");
}

void RoundTripFileHeader(ByteReader* in) {
  FileHeader h;
  h.format_version = in->U32();
  h.flags = in->U32();
  for (uint8_t& b : h.uuid) b = in->U8();
  h.region_size = in->U64();
  h.first_region_offset = in->U64();
  h.created_unix_nanos = in->U64();
  char enc[FileHeader::kEncodedSize];
  h.EncodeTo(enc);
  FileHeader d;
  absl::Status s = d.DecodeFrom(enc, sizeof(enc));
  const bool valid = h.format_version >= 1 &&
                     h.format_version <= kFormatVersion && h.flags == 0 &&
                     ValidRegionSize(h.region_size) &&
                     h.first_region_offset == kFirstRegionOffset;
  FUZZ_CHECK(s.ok() == valid,
             absl::StrCat("file header validity disagrees: ", s.ToString()));
  if (h.format_version > kFormatVersion) {
    FUZZ_CHECK(absl::IsFailedPrecondition(s), "newer version not flagged");
  }
  if (!s.ok()) return;
  FUZZ_CHECK(d.format_version == h.format_version && d.flags == h.flags &&
                 d.uuid == h.uuid && d.region_size == h.region_size &&
                 d.first_region_offset == h.first_region_offset &&
                 d.created_unix_nanos == h.created_unix_nanos,
             "file header fields changed in a round trip");
}

void RoundTripRegionHeader(ByteReader* in) {
  RegionHeader h;
  h.index = in->U32();
  h.epoch = in->U64();
  h.region_size = in->U64();
  for (uint8_t& b : h.file_uuid) b = in->U8();
  char enc[RegionHeader::kEncodedSize];
  h.EncodeTo(enc);
  RegionHeader d;
  absl::Status s = d.DecodeFrom(enc, sizeof(enc));
  FUZZ_CHECK(s.ok() == (h.epoch != 0),
             absl::StrCat("region header validity disagrees: ", s.ToString()));
  if (!s.ok()) return;
  FUZZ_CHECK(d.index == h.index && d.epoch == h.epoch &&
                 d.region_size == h.region_size && d.file_uuid == h.file_uuid,
             "region header fields changed in a round trip");
}

void Run(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  const uint8_t flags = in.U8();
  const std::string_view fh = in.Bytes(in.U8());
  DecodeFileHeader(fh, flags & 1);
  const std::string_view rh = in.Bytes(in.U8());
  DecodeRegionHeader(rh, flags & 2);
  RoundTripFileHeader(&in);
  RoundTripRegionHeader(&in);
}

}  // namespace
}  // namespace recmap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  recmap::fuzz::Run(data, size);
  return 0;
}
