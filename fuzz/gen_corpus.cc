// Writes the seed corpora of the fuzz harnesses: gen_corpus OUT_DIR creates
// OUT_DIR/<harness>/<seed> for each harness (fuzz/gen_corpus.sh runs it into
// fuzz/corpus). Seeds are small: valid inputs, each kind of damage the
// format distinguishes, and edge sizes. Store files are made by the real
// library, so they carry fresh uuids and epochs on every run.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "format.h"
#include "fuzz_util.h"
#include "recmap/store.h"
#include "tuning.h"

namespace recmap::fuzz {
namespace {

std::string g_out;

void Emit(const std::string& harness, const std::string& name,
          const std::string& bytes) {
  const std::string dir = g_out + "/" + harness;
  std::filesystem::create_directories(dir);
  WriteFileOrDie(dir + "/" + name, bytes);
}

// --- record_codec: flags | epoch | limit | durable tail | durable check |
// header fields (29 bytes) | log.

constexpr uint64_t kEpoch = 0x0000010203040506;

uint64_t CodecSeed() {
  std::array<uint8_t, 16> uuid{};
  std::memcpy(uuid.data(), "recmap-fuzz-uuid", 16);
  return RegionSeed(uuid, static_cast<uint32_t>(kEpoch >> 40), kEpoch);
}

void AppendRecord(std::string* log, RecordType type, uint64_t id, uint64_t seq,
                  const std::string& payload, uint64_t seed) {
  const size_t at = log->size();
  log->resize(at + RecordSize(payload.size()), '\0');
  char* p = log->data() + at;
  RecordHeader h;
  h.length = static_cast<uint32_t>(payload.size());
  h.type = type;
  h.id = id;
  h.sequence = seq;
  h.EncodeTo(p);
  std::memcpy(p + kRecordHeaderSize, payload.data(), payload.size());
  EncodeFixed64(p, RecordChecksum(p, h.length, seed));
}

std::string CodecInput(uint8_t flags, const std::string& log,
                       uint16_t limit = 0, uint64_t durable = 0) {
  std::string s;
  PutFixed8(&s, flags);
  PutFixed64(&s, kEpoch);
  s.append(reinterpret_cast<const char*>(&limit), 2);
  PutFixed64(&s, durable);
  PutFixed64(&s, DurableCheck(durable, CodecSeed()));
  PutFixed64(&s, 0x1122334455667788);  // round-trip header fields
  PutFixed32(&s, 5);
  PutFixed8(&s, 1);
  PutFixed64(&s, 42);
  PutFixed64(&s, 7);
  return s + log;
}

void RecordCodec() {
  const uint64_t seed = CodecSeed();
  std::string valid;
  uint64_t seq = 1;
  for (size_t len : {0, 1, 7, 8, 9, 31, 100}) {
    AppendRecord(&valid, RecordType::kPut, 1000 + len, seq++,
                 std::string(len, 'v'), seed);
  }
  AppendRecord(&valid, RecordType::kDelete, 1001, seq++, "", seed);
  AppendRecord(&valid, RecordType::kPadding, 0, seq++, std::string(24, '\0'),
               seed);
  Emit("record_codec", "empty", "");
  Emit("record_codec", "empty_log", CodecInput(0, ""));
  Emit("record_codec", "valid", CodecInput(0, valid));
  Emit("record_codec", "valid_repair", CodecInput(1, valid));
  Emit("record_codec", "valid_zero_tail",
       CodecInput(0, valid + std::string(64, '\0')));
  Emit("record_codec", "valid_limit",
       CodecInput(4, valid, static_cast<uint16_t>(valid.size() / 8 / 2)));
  Emit("record_codec", "valid_durable",
       CodecInput(2, valid, 0, kRegionDataOffset + 64));
  // A page closed by Sync: zeroes to the next page, where a resume marker
  // names the start of the gap, then more records.
  std::string closed = valid;
  const uint64_t gap = kRegionDataOffset + closed.size();
  closed.resize(kPageSize, '\0');
  std::string marker(8, '\0');
  EncodeFixed64(marker.data(), gap);
  AppendRecord(&closed, RecordType::kPadding, 0, seq, marker, seed);
  AppendRecord(&closed, RecordType::kPut, 77, seq++, "resumed", seed);
  Emit("record_codec", "resume_marker", CodecInput(0, closed));
  std::string big;
  AppendRecord(&big, RecordType::kPut, 9, 1, std::string(4000, 'b'), seed);
  Emit("record_codec", "one_big", CodecInput(0, big));
  // Damage of each kind the scan distinguishes.
  Emit("record_codec", "torn",
       CodecInput(0, valid.substr(0, valid.size() - 20)));
  std::string bad = valid;
  bad[kRecordHeaderSize + 3] ^= 0x10;  // the second record's checksum
  Emit("record_codec", "bad_checksum", CodecInput(0, bad));
  bad = valid;
  bad[kRecordTypeOffset] = 9;
  Emit("record_codec", "bad_type", CodecInput(0, bad));
  bad = valid;
  bad[kRecordTypeOffset + 2] = 1;
  Emit("record_codec", "reserved_nonzero", CodecInput(0, bad));
  bad = valid;
  EncodeFixed64(bad.data() + kRecordSequenceOffset, 0);
  Emit("record_codec", "zero_sequence", CodecInput(1, bad));
  std::string del;
  AppendRecord(&del, RecordType::kDelete, 3, 1, "xyz", seed);
  Emit("record_codec", "delete_with_payload", CodecInput(0, del));
  bad = valid;
  EncodeFixed32(bad.data() + kRecordLengthOffset, 0xFFFFFFF0u);
  Emit("record_codec", "huge_length", CodecInput(1, bad));
  // Damage in the middle, valid records after it: salvage resynchronises.
  std::string mid = valid.substr(0, 40) + std::string(16, '\x5a') + valid;
  Emit("record_codec", "damage_then_valid", CodecInput(0, mid));
}

// --- header_codec: flags | len | file header | len | region header |
// file header fields | region header fields.

std::string HeaderInput(uint8_t flags, const std::string& fh,
                        const std::string& rh, const FileHeader& f,
                        const RegionHeader& r) {
  std::string s;
  PutFixed8(&s, flags);
  PutFixed8(&s, static_cast<uint8_t>(fh.size()));
  s += fh;
  PutFixed8(&s, static_cast<uint8_t>(rh.size()));
  s += rh;
  PutFixed32(&s, f.format_version);
  PutFixed32(&s, f.flags);
  s.append(reinterpret_cast<const char*>(f.uuid.data()), 16);
  PutFixed64(&s, f.region_size);
  PutFixed64(&s, f.first_region_offset);
  PutFixed64(&s, f.created_unix_nanos);
  PutFixed32(&s, r.index);
  PutFixed64(&s, r.epoch);
  PutFixed64(&s, r.region_size);
  s.append(reinterpret_cast<const char*>(r.file_uuid.data()), 16);
  return s;
}

void HeaderCodec() {
  FileHeader f;
  for (int i = 0; i < 16; ++i) f.uuid[i] = static_cast<uint8_t>(i * 17);
  f.region_size = kDefaultRegionSize;
  f.created_unix_nanos = 1764115200000000000ull;
  RegionHeader r;
  r.index = 3;
  r.epoch = 0xfeedfacecafebeef;
  r.region_size = f.region_size;
  r.file_uuid = f.uuid;
  std::string fh(FileHeader::kEncodedSize, '\0');
  f.EncodeTo(fh.data());
  std::string rh(RegionHeader::kEncodedSize, '\0');
  r.EncodeTo(rh.data());
  Emit("header_codec", "empty", "");
  Emit("header_codec", "valid", HeaderInput(0, fh, rh, f, r));
  Emit("header_codec", "valid_repair", HeaderInput(3, fh, rh, f, r));
  Emit("header_codec", "valid_padded",
       HeaderInput(0, fh + std::string(8, '\0'), rh + "xx", f, r));
  Emit("header_codec", "truncated",
       HeaderInput(0, fh.substr(0, 71), rh.substr(0, 47), f, r));
  std::string b = fh, c = rh;
  b[1] = 'X';
  c[0] = 'X';
  Emit("header_codec", "wrong_magic", HeaderInput(0, b, c, f, r));
  b = fh, c = rh;
  b[70] ^= 1;
  c[45] ^= 1;
  Emit("header_codec", "bad_checksum", HeaderInput(0, b, c, f, r));
  FileHeader nf = f;
  nf.format_version = kFormatVersion + 1;
  nf.EncodeTo(b.data());
  Emit("header_codec", "newer_version", HeaderInput(0, b, rh, nf, r));
  FileHeader zf = f;
  zf.format_version = 0;
  zf.flags = 1;
  zf.region_size = kMinRegionSize + 1;
  zf.first_region_offset = 0;
  zf.EncodeTo(b.data());
  RegionHeader zr = r;
  zr.epoch = 0;
  zr.EncodeTo(c.data());
  Emit("header_codec", "bad_fields", HeaderInput(0, b, c, zf, zr));
  for (uint64_t rs : {kMinRegionSize, kMaxRegionSize, kMinRegionSize - 4096,
                      kMaxRegionSize + 4096}) {
    FileHeader e = f;
    e.region_size = rs;
    e.EncodeTo(b.data());
    Emit("header_codec", absl::StrCat("region_size_", rs),
         HeaderInput(0, b, rh, e, r));
  }
}

// --- store_open: flags | file. Stores made by the library.

constexpr uint64_t kSmallRegion = kMinRegionSize;

Options SmallOptions() {
  Options o;
  o.create_if_missing = true;
  o.region_size = kSmallRegion;
  o.max_file_size = uint64_t{64} << 20;
  return o;
}

std::unique_ptr<Store> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, SmallOptions());
  FUZZ_CHECK(s.ok(), s.status().ToString());
  return std::move(*s);
}

void CheckOk(const absl::Status& s) { FUZZ_CHECK(s.ok(), s.ToString()); }

std::string WithFlags(uint8_t flags, const std::string& file) {
  return std::string(1, static_cast<char>(flags)) + file;
}

// Flags with bit 4 set, then the index file (u32 size | bytes), then the
// store file (store_open_fuzzer.cc).
std::string WithIndex(uint8_t flags, const std::string& idx,
                      const std::string& file) {
  std::string s(1, static_cast<char>(flags | 16));
  PutFixed32(&s, static_cast<uint32_t>(idx.size()));
  return s + idx + file;
}

void StoreOpen() {
  const std::string dir = ScratchDir();
  // A fresh store: header pages only.
  std::string path = dir + "/empty.rmap";
  OpenOrDie(path).reset();
  const std::string empty = ReadFileOrDie(path);
  // One region, puts of edge sizes, a delete, synced.
  path = dir + "/small.rmap";
  std::string small, small_live;
  {
    auto s = OpenOrDie(path);
    for (uint64_t i = 0; i < 12; ++i) {
      CheckOk(s->Put(i, std::string(i * 13 % 200, static_cast<char>('a' + i))));
    }
    CheckOk(s->Delete(3));
    CheckOk(s->Put(5, "overwritten"));
    CheckOk(s->Sync());
    CheckOk(s->Put(100, "after sync"));
    small_live = ReadFileOrDie(path);  // as a killed process leaves it
  }
  small = ReadFileOrDie(path);
  // Several regions from two writers, some sealed.
  path = dir + "/multi.rmap";
  std::string multi;
  {
    auto s = OpenOrDie(path);
    auto w = s->NewWriter();
    CheckOk(w.status());
    for (uint64_t i = 0; i < 12; ++i) {
      CheckOk(s->Put(i, std::string(1500, static_cast<char>('A' + i))));
      CheckOk((*w)->Put(1000 + i, std::string(900, 'w')));
    }
    CheckOk(s->Sync());
    w->reset();
  }
  multi = ReadFileOrDie(path);

  // A store with its index file (the threshold lowered so a small store
  // writes one at close): several sealed regions from two writers.
  path = dir + "/indexed.rmap";
  std::string indexed, indexed_idx;
  {
    SetTuningForTesting({.persist_index_min_records = 8});
    Options o = SmallOptions();
    o.persist_index_in_background = false;  // written whole at the close
    o.prefault_bytes = 0;
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
    FUZZ_CHECK(s.ok(), s.status().ToString());
    auto w = (*s)->NewWriter();
    CheckOk(w.status());
    for (uint64_t i = 0; i < 30; ++i) {
      CheckOk((*s)->Put(
          i, std::string(300 + i * 17 % 200, static_cast<char>('a' + i % 26))));
      CheckOk((*w)->Put(1000 + i, std::string(700, 'w')));
      if (i % 7 == 0) CheckOk((*s)->Delete(1000 + i - 1));
      if (i % 5 == 0) CheckOk((*w)->Put(i, "newer"));
    }
    w->reset();
  }
  SetTuningForTesting(Tuning{});
  indexed = ReadFileOrDie(path);
  indexed_idx = ReadFileOrDie(path + ".idx");
  FUZZ_CHECK(!indexed_idx.empty(), "no index file was written");

  Emit("store_open", "empty_input", "");
  Emit("store_open", "empty_file", WithFlags(0, ""));
  Emit("store_open", "fresh", WithFlags(1, empty));
  Emit("store_open", "small", WithFlags(1, small));
  Emit("store_open", "small_verify", WithFlags(3, small));
  Emit("store_open", "small_crashed", WithFlags(1, small_live));
  Emit("store_open", "multi", WithFlags(1, multi));
  // Edge sizes.
  Emit("store_open", "header_truncated", WithFlags(0, small.substr(0, 71)));
  Emit("store_open", "header_page_only", WithFlags(1, small.substr(0, 4096)));
  Emit("store_open", "no_regions", WithFlags(1, small.substr(0, 8192)));
  Emit("store_open", "partial_region",
       WithFlags(1, small.substr(0, kFirstRegionOffset + 5000)));
  Emit("store_open", "trailing_bytes", WithFlags(1, small + "tail"));
  Emit("store_open", "truncated_mid_record",
       WithFlags(0, multi.substr(0, multi.size() - kSmallRegion - 1000)));
  // With the index file: intact, then damage the index does not see.
  Emit("store_open", "indexed", WithIndex(0, indexed_idx, indexed));
  Emit("store_open", "indexed_repair", WithIndex(1, indexed_idx, indexed));
  Emit("store_open", "indexed_no_index", WithFlags(0, indexed));
  {
    // A payload byte and a sequence byte of covered records (not repaired:
    // the checksum mismatch must surface on read).
    std::string f = indexed;
    const uint64_t r0 = kFirstRegionOffset + kRegionDataOffset;
    f[r0 + kRecordHeaderSize + 3] ^= 0x5A;
    Emit("store_open", "indexed_payload_flip", WithIndex(0, indexed_idx, f));
    f = indexed;
    f[kFirstRegionOffset + kSmallRegion + kRegionDataOffset + 24 + 5] ^= 0x59;
    Emit("store_open", "indexed_sequence_flip", WithIndex(0, indexed_idx, f));
    std::string ix = indexed_idx;
    ix[ix.size() / 2] ^= 0x10;
    Emit("store_open", "indexed_idx_flip", WithIndex(0, ix, indexed));
    Emit("store_open", "indexed_idx_flip_repair", WithIndex(1, ix, indexed));
    Emit("store_open", "indexed_idx_truncated",
         WithIndex(0, indexed_idx.substr(0, indexed_idx.size() - 20), indexed));
  }
  // Damage of each kind.
  std::string d = small;
  d[2] = 'X';
  Emit("store_open", "wrong_magic", WithFlags(0, d));
  d = small;
  EncodeFixed32(d.data() + 8, kFormatVersion + 1);
  Emit("store_open", "newer_version", WithFlags(1, d));
  d = small;
  d[20] ^= 1;
  Emit("store_open", "header_checksum", WithFlags(0, d));
  d = small;
  d[kFirstRegionOffset + 10] ^= 1;
  Emit("store_open", "region_header_checksum", WithFlags(0, d));
  d = small;
  EncodeFixed32(d.data() + kFirstRegionOffset + 4, 7);
  Emit("store_open", "region_header_wrong_index", WithFlags(1, d));
  d = small;
  d[kFirstRegionOffset + kRegionDataOffset + kRecordHeaderSize + 2] ^= 4;
  Emit("store_open", "record_bitflip", WithFlags(0, d));
  d = small;
  const uint64_t state = kFirstRegionOffset + kRegionStatePageOffset;
  const uint64_t tail = DecodeFixed64(d.data() + state + kStateCommittedTail);
  std::memset(d.data() + kFirstRegionOffset + tail - 40, 0x77, 40);
  Emit("store_open", "torn_tail", WithFlags(0, d));
  d = small;
  EncodeFixed64(d.data() + state + kStateCommittedTail, 12345);
  Emit("store_open", "implausible_tail", WithFlags(0, d));
  d = small;
  EncodeFixed64(d.data() + state + kStateDurableTail, kSmallRegion);
  Emit("store_open", "durable_past_data", WithFlags(1, d));
  d = small;
  std::memset(d.data() + kFirstRegionOffset + tail, 0x33, 256);
  Emit("store_open", "garbage_past_tail", WithFlags(0, d));
  d = small;
  EncodeFixed32(d.data() + state + kStateSealed, kSealedMagic);
  Emit("store_open", "sealed", WithFlags(1, d));
  std::string rnd(kFirstRegionOffset + kSmallRegion, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (char& c : rnd) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  Emit("store_open", "random_bytes", WithFlags(0, rnd));
  std::memcpy(rnd.data(), small.data(), kFirstRegionOffset);
  Emit("store_open", "random_region", WithFlags(1, rnd));
  ClearScratchDir();
}

// --- store_ops: op streams (see store_ops_fuzzer.cc for the decoding).

void StoreOps() {
  // op byte: (op & 15) % 10 is the operation, (op >> 4) % 3 the writer.
  auto put = [](int w, uint8_t id, uint8_t len) {
    return std::string{static_cast<char>(w << 4), static_cast<char>(id << 1),
                       static_cast<char>(len)};
  };
  auto del = [](int w, uint8_t id) {
    return std::string{static_cast<char>(2 + (w << 4)),
                       static_cast<char>(id << 1)};
  };
  auto append = [](int w, uint8_t len) {
    return std::string{static_cast<char>(3 + (w << 4)), static_cast<char>(len)};
  };
  auto get = [](uint8_t id) {
    return std::string{4, static_cast<char>(id << 1)};
  };
  const std::string sync(1, 5);
  auto reopen = [](uint8_t mode) {
    return std::string{6, static_cast<char>(mode)};
  };
  auto crash = [](std::string args) { return std::string(1, 7) + args; };
  const std::string reader = {8, 1}, check(1, 9);

  std::string basic;
  for (uint8_t i = 0; i < 8; ++i) basic += put(0, i, i * 20);
  basic += get(3) + del(0, 3) + get(3) + get(99) + append(0, 10) + check;
  Emit("store_ops", "basic", basic);
  std::string writers;
  for (uint8_t i = 0; i < 6; ++i)
    writers += put(0, i, 100) + put(1, i + 6, 200) + put(2, i + 12, 50);
  writers += sync + reader + check;
  Emit("store_ops", "three_writers", writers);
  std::string rotate;
  for (uint8_t i = 0; i < 10; ++i) rotate += put(i % 3, i, 255);  // 8 KiB
  rotate += check + reopen(0) + reopen(1) + reopen(2);
  Emit("store_ops", "rotate_reopen", rotate);
  // Crashes: a process crash; zeroes past the synced tail; garbage with a
  // rewound committed tail.
  std::string c = basic + sync + put(0, 1, 40) + put(1, 2, 40);
  Emit("store_ops", "crash_process", c + crash({0}) + check);
  Emit("store_ops", "crash_zero",
       c + crash({1, 0, 0, 0, 0, 1, 0x10, 0}) + check + put(0, 1, 9) + get(1));
  Emit("store_ops", "crash_garbage_rewind",
       c +
           crash({2, 0, 0, 0, 0, 2, 0x20, 0, 8, 'g', 'a', 'r', 'b', 'a', 'g',
                  'e', '!', 0}) +
           check);
  Emit("store_ops", "crash_unsynced_regions",
       rotate + crash({2, 1, 0, 0, 0, 5, 0, 1, 1, 0, 0, 0, 1, 0, 0}) + check);
  std::string appends;
  for (int i = 0; i < 20; ++i)
    appends += append(i % 3, static_cast<uint8_t>(i * 7));
  appends += std::string{4, 1} + std::string{4, 3} + sync + crash({0}) + check;
  Emit("store_ops", "appends", appends);
  Emit("store_ops", "compact",
       basic + del(1, 5) + put(2, 6, 30) + reopen(3) + check + put(0, 7, 8) +
           sync + crash({1, 0, 0, 0, 0, 1, 0, 0}) + reopen(3) + reader);
}

}  // namespace
}  // namespace recmap::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  recmap::fuzz::g_out = argv[1];
  recmap::fuzz::RecordCodec();
  recmap::fuzz::HeaderCodec();
  recmap::fuzz::StoreOpen();
  recmap::fuzz::StoreOps();
  return 0;
}
