#include "format.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "coding.h"
#include "scalar_xxh3.h"
#include "test_util.h"

namespace recmap {
namespace {

FileHeader SampleHeader() {
  FileHeader h;
  for (int i = 0; i < 16; ++i) h.uuid[i] = static_cast<uint8_t>(i * 17 + 3);
  h.region_size = 1 << 20;
  h.created_unix_nanos = 1700000000123456789ull;
  return h;
}

std::string Encoded(const FileHeader& h) {
  std::string buf(FileHeader::kEncodedSize, '\0');
  h.EncodeTo(buf.data());
  return buf;
}

// Re-seals the header checksum after a test edits a field, so that the
// field check (not the checksum) is what fails.
void Reseal(std::string* buf) {
  EncodeFixed64(buf->data() + 64, HeaderChecksum(buf->data(), 64));
}

TEST_CASE("FileHeader round-trips", "[format]") {
  FileHeader h = SampleHeader();
  std::string buf = Encoded(h);
  CHECK(std::memcmp(buf.data(), kFileMagic, 8) == 0);
  FileHeader d;
  REQUIRE(d.DecodeFrom(buf.data(), buf.size()).ok());
  CHECK(d.format_version == kFormatVersion);
  CHECK(d.uuid == h.uuid);
  CHECK(d.region_size == h.region_size);
  CHECK(d.first_region_offset == kFirstRegionOffset);
  CHECK(d.created_unix_nanos == h.created_unix_nanos);
}

TEST_CASE("FileHeader decode errors name the problem", "[format]") {
  const std::string good = Encoded(SampleHeader());
  FileHeader d;
  SECTION("truncated") {
    for (size_t n : {size_t{0}, size_t{1}, size_t{8}, size_t{71}}) {
      absl::Status s = d.DecodeFrom(good.data(), n);
      CHECK(s.code() == absl::StatusCode::kDataLoss);
      CHECK_THAT(std::string(s.message()), Catch::Contains("truncated"));
    }
  }
  SECTION("wrong magic") {
    std::string b = good;
    b[1] = 'X';
    absl::Status s = d.DecodeFrom(b.data(), b.size());
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.message()), Catch::Contains("wrong magic"));
  }
  SECTION("newer version") {
    std::string b = good;
    EncodeFixed32(b.data() + 8, kFormatVersion + 1);
    absl::Status s = d.DecodeFrom(b.data(), b.size());
    CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(s.message()), Catch::Contains("newer"));
  }
  SECTION("version zero") {
    std::string b = good;
    EncodeFixed32(b.data() + 8, 0);
    CHECK(d.DecodeFrom(b.data(), b.size()).code() ==
          absl::StatusCode::kDataLoss);
  }
  SECTION("any flipped bit fails the checksum") {
    for (size_t byte = 12; byte < 64; ++byte) {
      std::string b = good;
      b[byte] ^= 0x10;
      absl::Status s = d.DecodeFrom(b.data(), b.size());
      INFO("byte " << byte);
      CHECK(s.code() == absl::StatusCode::kDataLoss);
    }
    std::string b = good;
    b[70] ^= 1;
    absl::Status s = d.DecodeFrom(b.data(), b.size());
    CHECK_THAT(std::string(s.message()), Catch::Contains("checksum"));
  }
  SECTION("invalid fields behind a valid checksum") {
    std::string b = good;
    EncodeFixed64(b.data() + 32, 12345);  // region size not page-aligned
    Reseal(&b);
    absl::Status s = d.DecodeFrom(b.data(), b.size());
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    CHECK_THAT(std::string(s.message()), Catch::Contains("region size"));
    b = good;
    EncodeFixed32(b.data() + 12, 1);  // flags
    Reseal(&b);
    CHECK_THAT(std::string(d.DecodeFrom(b.data(), b.size()).message()),
               Catch::Contains("flags"));
    b = good;
    EncodeFixed64(b.data() + 40, 4096);  // first region offset
    Reseal(&b);
    CHECK_THAT(std::string(d.DecodeFrom(b.data(), b.size()).message()),
               Catch::Contains("first region offset"));
    b = good;
    EncodeFixed64(b.data() + 56, 9);  // reserved
    Reseal(&b);
    CHECK_THAT(std::string(d.DecodeFrom(b.data(), b.size()).message()),
               Catch::Contains("reserved"));
  }
}

TEST_CASE("RegionHeader round-trips and rejects damage", "[format]") {
  RegionHeader h;
  h.index = 7;
  h.epoch = 0xDEADBEEFCAFEF00Dull;
  h.region_size = 65536;
  h.file_uuid[3] = 9;
  char buf[RegionHeader::kEncodedSize];
  h.EncodeTo(buf);
  RegionHeader d;
  REQUIRE(d.DecodeFrom(buf, sizeof(buf)).ok());
  CHECK(d.index == 7);
  CHECK(d.epoch == h.epoch);
  CHECK(d.region_size == 65536);
  CHECK(d.file_uuid == h.file_uuid);
  CHECK(d.DecodeFrom(buf, sizeof(buf) - 1).code() ==
        absl::StatusCode::kDataLoss);
  for (size_t i = 0; i < sizeof(buf); ++i) {
    char b[sizeof(buf)];
    std::memcpy(b, buf, sizeof(buf));
    b[i] ^= 0x01;
    INFO("byte " << i);
    CHECK(d.DecodeFrom(b, sizeof(b)).code() == absl::StatusCode::kDataLoss);
  }
  char zero[RegionHeader::kEncodedSize] = {};
  CHECK_THAT(std::string(d.DecodeFrom(zero, sizeof(zero)).message()),
             Catch::Contains("wrong magic"));
}

TEST_CASE("RecordHeader decode rejects unknown types and reserved bits",
          "[format]") {
  RecordHeader h;
  h.checksum = 1;
  h.length = 100;
  h.type = RecordType::kPut;
  h.id = 42;
  h.sequence = 9;
  char buf[kRecordHeaderSize];
  h.EncodeTo(buf);
  RecordHeader d;
  REQUIRE(d.DecodeFrom(buf));
  CHECK(d.length == 100);
  CHECK(d.type == RecordType::kPut);
  CHECK(d.id == 42);
  CHECK(d.sequence == 9);
  buf[kRecordTypeOffset] = 4;
  CHECK_FALSE(d.DecodeFrom(buf));
  buf[kRecordTypeOffset] = 1;
  buf[kRecordTypeOffset + 2] = 1;
  CHECK_FALSE(d.DecodeFrom(buf));
}

TEST_CASE("record checksums bind file, region and epoch", "[format]") {
  std::array<uint8_t, 16> a{}, b{};
  b[15] = 1;
  const uint64_t s = RegionSeed(a, 0, 1);
  CHECK(s != RegionSeed(b, 0, 1));
  CHECK(s != RegionSeed(a, 1, 1));
  CHECK(s != RegionSeed(a, 0, 2));
  std::string rec(kRecordHeaderSize + 5, '\0');
  RecordHeader h;
  h.length = 5;
  h.type = RecordType::kPut;
  h.id = 1;
  h.sequence = 1;
  h.EncodeTo(rec.data());
  std::memcpy(rec.data() + kRecordHeaderSize, "hello", 5);
  const uint64_t c = RecordChecksum(rec.data(), 5, s);
  // Every checksummed byte matters.
  for (size_t i = kRecordChecksummedOffset; i < rec.size(); ++i) {
    std::string m = rec;
    m[i] ^= 0x40;
    INFO("byte " << i);
    CHECK(RecordChecksum(m.data(), 5, s) != c);
  }
  CHECK(RecordChecksum(rec.data(), 5, RegionSeed(a, 0, 2)) != c);
}

TEST_CASE("record checksums equal scalar XXH3 at every length class",
          "[format]") {
  // RecordChecksum hashes long records with libxxhash's CPU-dispatched
  // (AVX2 / AVX-512) XXH3 and short ones inline; the format is plain XXH3
  // (docs/FORMAT.md). The reference here is XXH3's scalar code.
  std::string rec(kRecordHeaderSize + 70000, '\0');
  for (size_t i = 0; i < rec.size(); ++i)
    rec[i] = static_cast<char>((i * 2654435761u) >> 13);
  const uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (uint32_t len : {0u, 1u, 100u, 104u, 208u, 216u, 217u, 300u, 1000u, 4096u,
                       4097u, 65536u, 70000u}) {
    INFO("length " << len);
    CHECK(RecordChecksum(rec.data(), len, seed) ==
          testing::ScalarXxh3(
              rec.data() + kRecordChecksummedOffset,
              kRecordHeaderSize - kRecordChecksummedOffset + len, seed));
  }
}

TEST_CASE("record sizes and limits", "[format]") {
  CHECK(RecordSize(0) == 32);
  CHECK(RecordSize(1) == 40);
  CHECK(RecordSize(8) == 40);
  CHECK(RecordSize(100) == 136);
  CHECK(MaxPayload(65536) == 65536 - 8192 - 32);
  CHECK(RecordSize(MaxPayload(65536)) == 65536 - 8192);
}

}  // namespace
}  // namespace recmap

namespace recmap {
namespace {

TEST_CASE("Record-type predicates classify every type", "[format]") {
  CHECK_FALSE(IsUserRecord(RecordType::kZero));
  CHECK(IsUserRecord(RecordType::kPut));
  CHECK(IsUserRecord(RecordType::kDelete));
  CHECK_FALSE(IsUserRecord(RecordType::kPadding));
  CHECK(IsPadding(RecordType::kPadding));
  CHECK_FALSE(IsPadding(RecordType::kPut));
  CHECK(IsTombstone(RecordType::kDelete));
  CHECK_FALSE(IsTombstone(RecordType::kPut));
  CHECK(static_cast<uint8_t>(RecordType::kPadding) == kMaxRecordType);
}

TEST_CASE("Header fields sit at their named offsets", "[format]") {
  FileHeader h = SampleHeader();
  std::string buf = Encoded(h);
  CHECK(DecodeFixed32(buf.data() + FileHeader::kVersionOffset) ==
        kFormatVersion);
  CHECK(DecodeFixed64(buf.data() + FileHeader::kRegionSizeOffset) ==
        h.region_size);
  CHECK(DecodeFixed64(buf.data() + FileHeader::kFirstRegionFieldOffset) ==
        kFirstRegionOffset);
  CHECK(DecodeFixed64(buf.data() + FileHeader::kChecksumOffset) ==
        HeaderChecksum(buf.data(), FileHeader::kChecksumOffset));
  RegionHeader rh;
  rh.index = 7;
  rh.epoch = 99;
  rh.region_size = 1 << 20;
  std::string rbuf(RegionHeader::kEncodedSize, '\0');
  rh.EncodeTo(rbuf.data());
  CHECK(DecodeFixed32(rbuf.data() + RegionHeader::kMagicOffset) ==
        kRegionMagic);
  CHECK(DecodeFixed32(rbuf.data() + RegionHeader::kIndexOffset) == 7);
  CHECK(DecodeFixed64(rbuf.data() + RegionHeader::kEpochOffset) == 99);
  CHECK(DecodeFixed64(rbuf.data() + RegionHeader::kChecksumOffset) ==
        HeaderChecksum(rbuf.data(), RegionHeader::kChecksumOffset));
}

}  // namespace
}  // namespace recmap
