// Torn tails, exhaustively. A store whose last region ends with a Sync(),
// a resume marker and three records is damaged in every way a crash can
// leave its end:
//   - "truncated" at every byte of the last three records and the marker,
//     modelled as zeroing from that byte to the end of the region (the
//     file must stay region-aligned to be mapped), and as a real ftruncate
//     to that (unaligned) size;
//   - every bit of the last two record headers flipped;
//   - every bit of the region header and of the used part of the state page
//     flipped.
// Each image is recovered twice (default mode): the first recovery yields
// exactly the longest valid prefix, the second changes neither the records
// nor a byte of the file. Absolute mode and salvage are checked on the same
// images.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "crash/crash_util.h"
#include "format.h"
#include "recmap/store.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

struct Rec {
  uint64_t off;  // file offset
  uint64_t end;  // file offset past the record (padded)
  uint64_t id;
  bool padding;
};

struct Base {
  std::string bytes;
  std::vector<Rec> recs;  // every record of the store, file order
  uint32_t last_region = 0;
  uint64_t region_size = 0;
};

std::string Dir() {
  struct stat st;
  if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0')
    return t;
  return ::stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
}

Base MakeBase(const std::string& path) {
  Options o = SmallOptions();
  o.region_size = 16 << 10;  // 8 KiB of log per region: several regions
  Base b;
  b.region_size = o.region_size;
  {
    std::unique_ptr<Store> s = OpenOrDie(path, o);
    uint64_t id = 1;
    // Fill until the third region holds a few records.
    while (s->Stats().regions < 3 || s->Stats().region_stats[2].records < 3) {
      REQUIRE(s->Put(id, PayloadFor(id, 1500)).ok());
      ++id;
    }
    REQUIRE(s->Sync().ok());  // closes the tail page: a resume marker next
    for (int k = 0; k < 3; ++k, ++id)
      REQUIRE(s->Put(id, PayloadFor(id, 1500)).ok());
    const uint32_t n = s->Stats().regions;
    b.last_region = n - 1;
    for (uint32_t r = 0; r < n; ++r) {
      REQUIRE(s->ForEachInRegion(r, [&](const RecordView& v) {
                 b.recs.push_back(
                     {v.location.file_offset,
                      v.location.file_offset + RecordSize(v.value.size()), v.id,
                      v.type == RecordType::kPadding});
                 return true;
               }).ok());
    }
  }
  b.bytes = ReadFile(path);
  return b;
}

// Ids (non-padding) of the records a store returns, region by region.
absl::Status Collect(const std::string& path, RecoveryMode mode, bool read_only,
                     std::vector<uint64_t>* ids) {
  Options o;
  o.recovery_mode = mode;
  o.read_only = read_only;
  o.max_file_size = uint64_t{1} << 30;
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
  if (!s.ok()) return s.status();
  ids->clear();
  const uint32_t n = (*s)->Stats().regions;
  for (uint32_t r = 0; r < n; ++r) {
    absl::Status st = (*s)->ForEachInRegion(r, [&](const RecordView& v) {
      if (v.type != RecordType::kPadding) {
        if (!PayloadMatches(v.id, v.value, 1500)) ids->push_back(~uint64_t{0});
        ids->push_back(v.id);
      }
      return true;
    });
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

// The ids of the longest prefix of records whose bytes `img` kept intact.
std::vector<uint64_t> IntactPrefix(const Base& b, const std::string& img) {
  std::vector<uint64_t> ids;
  for (const Rec& r : b.recs) {
    if (r.end > img.size() ||
        std::memcmp(b.bytes.data() + r.off, img.data() + r.off,
                    r.end - r.off) != 0)
      break;
    if (!r.padding) ids.push_back(r.id);
  }
  return ids;
}

std::vector<uint64_t> AllBut(const Base& b, size_t skip) {
  std::vector<uint64_t> ids;
  for (size_t k = 0; k < b.recs.size(); ++k)
    if (k != skip && !b.recs[k].padding) ids.push_back(b.recs[k].id);
  return ids;
}

struct Tally {
  uint64_t images = 0;
  uint64_t mismatches = 0;   // recovered set != expected
  uint64_t unstable = 0;     // second recovery changed something
  uint64_t mode_errors = 0;  // absolute / salvage misbehaved
};

#define NOTE(msg) CRASH_NOTE("torn_tail", msg)

// Recovers `path` twice in default mode; `want` empty + `want_error` means
// DataLoss is the right answer.
void RecoverTwice(const std::string& path, const std::vector<uint64_t>& want,
                  bool want_error, const std::string& what, Tally* t) {
  t->images++;
  std::vector<uint64_t> got;
  absl::Status s = Collect(path, RecoveryMode::kTolerateTornTail, false, &got);
  if (want_error) {
    if (s.code() != absl::StatusCode::kDataLoss) {
      t->mismatches++;
      NOTE(what << ": expected DataLoss, got " << s.ToString());
    }
    return;
  }
  if (!s.ok() || got != want) {
    t->mismatches++;
    NOTE(what << ": " << s.ToString() << ", " << got.size() << " records, "
              << "expected " << want.size());
    return;
  }
  const std::string after1 = ReadFile(path);
  std::vector<uint64_t> again;
  s = Collect(path, RecoveryMode::kTolerateTornTail, false, &again);
  if (!s.ok() || again != got || ReadFile(path) != after1) {
    t->unstable++;
    NOTE(what << ": second recovery changed the store");
  }
}

TEST_CASE("torn tail: every truncation point, every header bit",
          "[crash][torn]") {
  std::string tmpl = Dir() + "/recmap-torn-XXXXXX";
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  const std::string base_path = tmpl + "/base.rmap";
  const std::string img_path = tmpl + "/img.rmap";
  const Base b = MakeBase(base_path);
  REQUIRE(b.recs.size() >= 6);
  // The last three records and the resume marker before them.
  size_t first = b.recs.size() - 3;
  if (first > 0 && b.recs[first - 1].padding) --first;
  REQUIRE(b.recs[first].padding);  // the Sync() closed the page
  const uint64_t region_end =
      kFirstRegionOffset + uint64_t{b.last_region + 1} * b.region_size;
  REQUIRE(b.bytes.size() == region_end);
  Tally zeroed, truncated, flipped, header, state;
  uint64_t truncated_ro = 0, truncated_ro_bad = 0;

  for (uint64_t at = b.recs[first].off; at < b.recs.back().end; ++at) {
    std::string img = b.bytes;
    std::memset(img.data() + at, 0, region_end - at);
    WriteFile(img_path, img);
    RecoverTwice(img_path, IntactPrefix(b, img), false,
                 "zero from " + std::to_string(at), &zeroed);

    // A real truncation: the default-mode open gives the region its zero
    // tail back, so the result is the same prefix.
    WriteFile(img_path, b.bytes);
    REQUIRE(::truncate(img_path.c_str(), static_cast<off_t>(at)) == 0);
    std::vector<uint64_t> got;
    // Read-only, nothing can be extended, but the cut region's missing
    // part reads as zeros: every record before the cut is read, exactly
    // the prefix the zeroed image gives.
    truncated_ro++;
    absl::Status ro =
        Collect(img_path, RecoveryMode::kTolerateTornTail, true, &got);
    if (!ro.ok() || got != IntactPrefix(b, img)) {
      truncated_ro_bad++;
      NOTE("read-only open of file truncated at " << at << ": "
                                                  << ro.ToString());
    }
    absl::Status abs =
        Collect(img_path, RecoveryMode::kAbsoluteConsistency, false, &got);
    if (abs.code() != absl::StatusCode::kDataLoss) {
      truncated.mode_errors++;
      NOTE("absolute open of truncated file: " << abs.ToString());
    }
    RecoverTwice(img_path, IntactPrefix(b, img), false,
                 "truncate at " + std::to_string(at), &truncated);
  }

  for (size_t k = b.recs.size() - 2; k < b.recs.size(); ++k) {
    for (uint64_t bit = 0; bit < kRecordHeaderSize * 8; ++bit) {
      std::string img = b.bytes;
      img[b.recs[k].off + bit / 8] ^= static_cast<char>(1 << (bit % 8));
      std::vector<uint64_t> got;
      WriteFile(img_path, img);
      if (Collect(img_path, RecoveryMode::kAbsoluteConsistency, false, &got)
              .code() != absl::StatusCode::kDataLoss) {
        flipped.mode_errors++;
        NOTE("absolute accepted flipped bit " << bit << " of record " << k);
      }
      WriteFile(img_path, img);
      absl::Status sv = Collect(img_path, RecoveryMode::kSalvage, false, &got);
      if (!sv.ok() || got != AllBut(b, k)) {
        flipped.mode_errors++;
        NOTE("salvage of flipped bit " << bit << " of record " << k << ": "
                                       << sv.ToString() << ", " << got.size()
                                       << " records");
      }
      WriteFile(img_path, img);
      RecoverTwice(
          img_path, IntactPrefix(b, img), false,
          "flip bit " + std::to_string(bit) + " of record " + std::to_string(k),
          &flipped);
    }
  }

  const uint64_t last_start = region_end - b.region_size;
  for (uint64_t bit = 0; bit < RegionHeader::kEncodedSize * 8; ++bit) {
    std::string img = b.bytes;
    img[last_start + bit / 8] ^= static_cast<char>(1 << (bit % 8));
    WriteFile(img_path, img);
    // Records follow the header: its damage is never a torn tail.
    RecoverTwice(img_path, {}, true, "region header bit " + std::to_string(bit),
                 &header);
    std::vector<uint64_t> got, want;
    for (const Rec& r : b.recs)
      if (r.end <= last_start && !r.padding) want.push_back(r.id);
    WriteFile(img_path, img);
    absl::Status sv = Collect(img_path, RecoveryMode::kSalvage, false, &got);
    if (!sv.ok() || got != want) {
      header.mode_errors++;
      NOTE("salvage with region header bit " << bit << ": " << sv.ToString());
    }
  }

  // The state page's live words (tails, seal, owner, durable tail and its
  // check) sit in its first 256 bytes. A full recovery trusts none of them
  // beyond the durable floor's check word: every record comes back.
  std::vector<uint64_t> all = AllBut(b, b.recs.size());
  for (uint64_t bit = 0; bit < 256 * 8; ++bit) {
    std::string img = b.bytes;
    img[last_start + kRegionStatePageOffset + bit / 8] ^=
        static_cast<char>(1 << (bit % 8));
    if (img == b.bytes) continue;
    WriteFile(img_path, img);
    RecoverTwice(img_path, all, false, "state bit " + std::to_string(bit),
                 &state);
    WriteFile(img_path, img);
    std::vector<uint64_t> got;
    absl::Status abs =
        Collect(img_path, RecoveryMode::kAbsoluteConsistency, false, &got);
    // Absolute mode holds the log to the committed tail, which has no check
    // word: a flip that lands it on an earlier record boundary yields a
    // shorter prefix; anything else must be DataLoss.
    const bool prefix = got.size() <= all.size() &&
                        std::equal(got.begin(), got.end(), all.begin());
    if (abs.ok() ? !prefix : abs.code() != absl::StatusCode::kDataLoss) {
      state.mode_errors++;
      NOTE("absolute with state bit " << bit << ": " << abs.ToString() << ", "
                                      << got.size() << " records");
    }
  }
  std::string rm = "rm -rf " + tmpl;
  REQUIRE(std::system(rm.c_str()) == 0);

  auto line = [](const char* name, const Tally& t) {
    RECMAP_FIGURES(
        "torn_tail_%s: images=%llu wrong_prefix=%llu "
        "changed_by_second_recovery=%llu mode_errors=%llu",
        name, (unsigned long long)t.images, (unsigned long long)t.mismatches,
        (unsigned long long)t.unstable, (unsigned long long)t.mode_errors);
  };
  line("zeroed_from_byte", zeroed);
  line("ftruncated_at_byte", truncated);
  line("record_header_bitflips", flipped);
  line("region_header_bitflips", header);
  line("state_page_bitflips", state);
  RECMAP_FIGURES("torn_tail_read_only_truncated: opens=%llu wrong=%llu",
                 (unsigned long long)truncated_ro,
                 (unsigned long long)truncated_ro_bad);
  for (const Tally* t : {&zeroed, &truncated, &flipped, &header, &state}) {
    CHECK(t->images > 0);
    CHECK(t->mismatches == 0);
    CHECK(t->unstable == 0);
    CHECK(t->mode_errors == 0);
  }
  CHECK(truncated_ro_bad == 0);
}

}  // namespace
}  // namespace recmap::testing
