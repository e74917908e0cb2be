// Fuzzes the record layer: arbitrary bytes laid out as one region's log in
// a buffer the fuzzer owns (allocated to the exact size, so any read past it
// is caught by ASan), decoded with the store's own RecordHeader::DecodeFrom,
// CheckRecordAt and ScanRegion.
//
// Input: flags u8 | epoch u64 | limit u16 | durable tail u64 | durable
// check u64 | a record header's fields (checksum u64, length u32, type u8,
// id u64, sequence u64) for an encode/decode round trip | log bytes. Flag bit 0
// rewrites the record checksums along the log (as a writer would have) so
// mutations get past them; bit 1 rewrites the durable check word; bit 2 uses
// `limit` as the committed tail instead of the region's end.
//
// Invariants: every record a scan returns lies inside [from, limit), holds
// a matching checksum and re-encodes to exactly its bytes; a plain scan is a
// contiguous prefix of the salvage scan; CheckRecordAt agrees with both.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "format.h"
#include "fuzz_util.h"
#include "region.h"

namespace recmap::fuzz {
namespace {

constexpr size_t kMaxLog = 1 << 15;
constexpr uint64_t kMaxProbes = 512;

struct Seen {
  uint64_t offset;
  uint64_t id;
  uint64_t sequence;
  uint32_t length;
  RecordType type;
};

void CheckRecord(const RegionRef& r, uint64_t limit, const ScannedRecord& rec) {
  const uint64_t off = rec.offset;
  FUZZ_CHECK(off % 8 == 0 && off >= kRegionDataOffset,
             absl::StrCat("misaligned record at ", off));
  FUZZ_CHECK(off + kRecordHeaderSize + rec.header.length <= limit,
             absl::StrCat("record at ", off, " ends past limit ", limit));
  FUZZ_CHECK(rec.payload == r.base + off + kRecordHeaderSize,
             "payload pointer does not follow the header");
  FUZZ_CHECK(rec.header.type != RecordType::kZero && rec.header.sequence != 0,
             "zero-type or zero-sequence record accepted");
  FUZZ_CHECK(rec.header.type != RecordType::kDelete || rec.header.length == 0,
             "tombstone with a payload accepted");
  char enc[kRecordHeaderSize];
  rec.header.EncodeTo(enc);
  FUZZ_CHECK(std::memcmp(enc, r.base + off, kRecordHeaderSize) == 0,
             absl::StrCat("header at ", off, " does not re-encode"));
  FUZZ_CHECK(RecordChecksum(r.base + off, rec.header.length, r.seed) ==
                 rec.header.checksum,
             "accepted a record whose checksum does not match");
}

// Header encode/decode round trips on raw bytes and on chosen fields.
void HeaderRoundTrips(const char* log, size_t n, const RecordHeader& h) {
  for (size_t pos = 0; pos + kRecordHeaderSize <= n; pos += 8) {
    RecordHeader h;
    if (!h.DecodeFrom(log + pos)) continue;
    char enc[kRecordHeaderSize];
    h.EncodeTo(enc);
    FUZZ_CHECK(std::memcmp(enc, log + pos, kRecordHeaderSize) == 0,
               absl::StrCat("decoded header at ", pos, " does not re-encode"));
  }
  char enc[kRecordHeaderSize];
  h.EncodeTo(enc);
  RecordHeader d;
  FUZZ_CHECK(d.DecodeFrom(enc), "an encoded header does not decode");
  FUZZ_CHECK(d.checksum == h.checksum && d.length == h.length &&
                 d.type == h.type && d.id == h.id && d.sequence == h.sequence,
             "header fields changed in a round trip");
}

void Run(const uint8_t* data, size_t size) {
  ByteReader in(data, size);
  const uint8_t flags = in.U8();
  const uint64_t epoch = in.U64();
  const uint16_t limit_word = in.U16();
  const uint64_t durable_tail = in.U64();
  const uint64_t durable_check = in.U64();
  RecordHeader fields;
  fields.checksum = in.U64();
  fields.length = in.U32();
  fields.type = static_cast<RecordType>(in.U8() & 3);
  fields.id = in.U64();
  fields.sequence = in.U64();
  const std::string_view log = in.Bytes(kMaxLog);

  // The region: header and state pages, then the log, padded to 8 bytes.
  const uint64_t region_size =
      kRegionDataOffset + ((log.size() + 7) & ~uint64_t{7});
  std::unique_ptr<char[]> buf(new char[region_size]);
  std::memset(buf.get(), 0, region_size);
  std::memcpy(buf.get() + kRegionDataOffset, log.data(), log.size());
  RegionRef r;
  r.base = buf.get();
  r.size = region_size;
  r.index = static_cast<uint32_t>(epoch >> 40);
  std::array<uint8_t, 16> uuid{};
  std::memcpy(uuid.data(), "recmap-fuzz-uuid", 16);
  r.seed = RegionSeed(uuid, r.index, epoch);

  if (flags & 1) {
    uint64_t pos = kRegionDataOffset;
    while (pos + kRecordHeaderSize <= region_size) {
      RecordHeader h;
      char* p = r.base + pos;
      if (h.DecodeFrom(p) && h.type != RecordType::kZero &&
          h.length <= region_size - pos - kRecordHeaderSize) {
        EncodeFixed64(p, RecordChecksum(p, h.length, r.seed));
        pos += RecordSize(h.length);
      } else {
        pos += 8;
      }
    }
  }

  // Durable tail words on the state page.
  char* state = r.base + kRegionStatePageOffset;
  EncodeFixed64(state + kStateDurableTail, durable_tail);
  EncodeFixed64(
      state + kStateDurableCheck,
      (flags & 2) ? DurableCheck(durable_tail, r.seed) : durable_check);
  const uint64_t dt = r.DurableTail();
  FUZZ_CHECK(dt == 0 || (dt == durable_tail && r.PlausibleTail(dt)),
             "DurableTail returned an implausible or altered tail");
  if ((flags & 2) && r.PlausibleTail(durable_tail)) {
    FUZZ_CHECK(dt == durable_tail, "a valid durable tail was rejected");
  }

  uint64_t limit = region_size;
  if (flags & 4) {
    limit = kRegionDataOffset +
            (uint64_t{limit_word} * 8) % (region_size - kRegionDataOffset + 8);
  }

  std::vector<Seen> plain;
  ScanResult res = ScanRegion(
      r, kRegionDataOffset, limit, /*salvage=*/false,
      [&](const ScannedRecord& rec) {
        CheckRecord(r, limit, rec);
        plain.push_back({rec.offset, rec.header.id, rec.header.sequence,
                         rec.header.length, rec.header.type});
      });
  uint64_t expect_end = kRegionDataOffset, max_seq = 0;
  for (const Seen& s : plain) {
    if (s.offset != expect_end) {
      // Only a page closed by Sync may be skipped: a zero gap to the next
      // page, where a resume marker names the gap's start.
      FUZZ_CHECK(s.offset == (expect_end / kPageSize + 1) * kPageSize &&
                     s.type == RecordType::kPadding &&
                     s.length == kResumeMarkerLength &&
                     DecodeFixed64(r.base + s.offset + kRecordHeaderSize) ==
                         expect_end,
                 absl::StrCat("plain scan skipped bytes at ", expect_end));
      for (uint64_t p = expect_end; p < s.offset; ++p) {
        FUZZ_CHECK(r.base[p] == 0, "plain scan skipped non-zero bytes");
      }
    }
    expect_end = s.offset + RecordSize(s.length);
    max_seq = std::max(max_seq, s.sequence);
  }
  FUZZ_CHECK(res.end == expect_end, "scan end is not after the last record");
  FUZZ_CHECK(res.records == plain.size(), "scan record count is wrong");
  FUZZ_CHECK(res.max_sequence == max_seq, "scan max sequence is wrong");
  FUZZ_CHECK(res.skipped_bytes == 0 && res.first_damage == 0,
             "plain scan reported salvage results");
  if (res.stop == ScanStop::kLimit) {
    FUZZ_CHECK(res.end >= limit, "scan stopped at kLimit before the limit");
  } else if (res.stop == ScanStop::kZero) {
    char zero[kRecordHeaderSize] = {};
    FUZZ_CHECK(std::memcmp(r.base + res.end, zero, kRecordHeaderSize) == 0,
               "kZero at a non-zero header");
  }

  std::vector<Seen> salvaged;
  ScanResult sres = ScanRegion(
      r, kRegionDataOffset, limit, /*salvage=*/true,
      [&](const ScannedRecord& rec) {
        CheckRecord(r, limit, rec);
        salvaged.push_back({rec.offset, rec.header.id, rec.header.sequence,
                            rec.header.length, rec.header.type});
      });
  FUZZ_CHECK(salvaged.size() >= plain.size(),
             "salvage found fewer records than a plain scan");
  for (size_t k = 0; k < plain.size(); ++k) {
    FUZZ_CHECK(salvaged[k].offset == plain[k].offset &&
                   salvaged[k].sequence == plain[k].sequence,
               "the plain scan is not a prefix of the salvage scan");
  }
  for (size_t k = 1; k < salvaged.size(); ++k) {
    FUZZ_CHECK(salvaged[k].offset >=
                   salvaged[k - 1].offset + RecordSize(salvaged[k - 1].length),
               "salvage returned overlapping records");
  }
  if (!IsDamage(res.stop) && res.stop != ScanStop::kZero) {
    FUZZ_CHECK(salvaged.size() == plain.size() && sres.first_damage == 0,
               "salvage differs from an undamaged plain scan");
  } else if (sres.first_damage != 0) {
    // Salvage treats zeros followed by a valid record as a lost page.
    FUZZ_CHECK(sres.first_damage == res.end,
               "salvage located the first damage elsewhere");
  } else {
    FUZZ_CHECK(salvaged.size() == plain.size(),
               "salvage found records past an end it did not call damage");
  }
  FUZZ_CHECK(sres.skipped_bytes <= limit - kRegionDataOffset,
             "salvage skipped more bytes than the log holds");

  // Every record either scan found validates on its own, and CheckRecordAt
  // never accepts an invalid record at any aligned offset.
  for (const Seen& s : salvaged) {
    ScannedRecord rec;
    FUZZ_CHECK(CheckRecordAt(r, s.offset, limit, &rec) == ScanStop::kLimit,
               "CheckRecordAt rejects a record the scan accepted");
  }
  // (Bounded: each position may hash up to the whole log.)
  const uint64_t probe_end =
      std::min<uint64_t>(region_size, kRegionDataOffset + 8 * kMaxProbes);
  for (uint64_t pos = kRegionDataOffset; pos < probe_end; pos += 8) {
    ScannedRecord rec;
    if (CheckRecordAt(r, pos, limit, &rec) == ScanStop::kLimit) {
      CheckRecord(r, limit, rec);
    }
  }

  HeaderRoundTrips(log.data(), log.size(), fields);
}

}  // namespace
}  // namespace recmap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  recmap::fuzz::Run(data, size);
  return 0;
}
