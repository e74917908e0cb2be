// Corruption from outside (docs/RELIABILITY.md, "Corruption campaign"):
// real multi-writer stores WITH their index files get 1-8 random bytes
// flipped anywhere in the store file, the .idx, or both; then every read
// path -- Store::Get, GetRecord, MultiGet, ForEachLive, ForEachRecord, a
// Tailer, and the `recmap get` / `recmap dump --json` tools -- is held
// against a model of what was written, in read-only and writable opens,
// with the index file and without it, and again after `recover`.
//
// A wrong record is one returned as good whose bytes differ from what was
// written for its (id, sequence) -- or whose (id, sequence) was never
// written. Errors (DataLoss, NotFound) are allowed; wrong records and
// signals are not. Also: after a recovery that succeeds, verify must find
// the store clean.
//
// CI: 200 trials; RECMAP_SOAK=1: 10x; RECMAP_CRASH_SCALE=P: P% of CI.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "crash/crash_util.h"
#include "recmap/store.h"
#include "recmap/tailer.h"
#include "recover.h"
#include "test_util.h"
#include "tuning.h"
#include "verify.h"

namespace recmap {
namespace {

using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::ToolPath;
using testing::WriteFile;

constexpr int kWriters = 3;
constexpr uint64_t kIdsPerWriter = 2000;
constexpr uint64_t kRegionSize = 64 * 1024;

struct Written {
  RecordType type;
  std::string value;
};

// (id, sequence) -> what was written; and each id's latest sequence.
struct Model {
  absl::flat_hash_map<uint64_t, absl::flat_hash_map<uint64_t, Written>> by_id;
  absl::flat_hash_map<uint64_t, uint64_t> latest;
  std::vector<uint64_t> ids;
};

std::string ValueFor(uint64_t id, int version) {
  std::string v = absl::StrCat("id=", id, ";v=", version, ";");
  const size_t len = 16 + (id * 7 + version * 13) % 150;
  while (v.size() < len)
    v.push_back(static_cast<char>('A' + (v.size() + id) % 26));
  return v;
}

struct Fixture {
  TempDir dir;
  std::string path;
  Model model;
  uint64_t records = 0;
};

// Three writers, each in its own region, put ids of their own range,
// overwrite some, delete some; the store closes cleanly and writes its
// index file (the threshold lowered so a CI-sized store gets one).
Fixture* BuildFixture() {
  auto* f = new Fixture();
  f->path = f->dir.File("base.rmap");
  SetTuningForTesting({.persist_index_min_records = 1000});
  Options o;
  o.create_if_missing = true;
  o.region_size = kRegionSize;
  o.prefault_bytes = 0;
  std::vector<std::vector<std::pair<uint64_t, Written>>> logs(kWriters);
  {
    auto s = testing::OpenOrDie(f->path, o);
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        auto wr = s->NewWriter();
        if (!wr.ok()) return;
        for (uint64_t i = 0; i < kIdsPerWriter; ++i) {
          const uint64_t id = 1 + w * kIdsPerWriter + i;
          std::string v = ValueFor(id, 0);
          if ((*wr)->Put(id, v).ok())
            logs[w].push_back({id, {RecordType::kPut, v}});
          if (i % 5 == 0) {
            v = ValueFor(id, 1);
            if ((*wr)->Put(id, v).ok())
              logs[w].push_back({id, {RecordType::kPut, v}});
          }
          if (i % 17 == 0 && (*wr)->Delete(id).ok())
            logs[w].push_back({id, {RecordType::kDelete, ""}});
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  SetTuningForTesting(Tuning{});  // the campaign's opens: the defaults
  // Learn each write's sequence from the pristine log, checking that the
  // log holds exactly what was written.
  Options ro;
  ro.read_only = true;
  auto s = testing::OpenOrDie(f->path, ro);
  std::map<std::pair<uint64_t, std::string>, int> expected;
  for (const auto& log : logs)
    for (const auto& [id, w] : log)
      expected[{id, absl::StrCat(static_cast<int>(w.type), ":", w.value)}]++;
  absl::Status st = s->ForEachRecord([&](const RecordView& r) {
    auto key = std::make_pair(r.id, absl::StrCat(static_cast<int>(r.type), ":",
                                                 std::string(r.value)));
    auto it = expected.find(key);
    REQUIRE(it != expected.end());
    if (--it->second == 0) expected.erase(it);
    f->model.by_id[r.id][r.sequence] = {r.type, std::string(r.value)};
    uint64_t& l = f->model.latest[r.id];
    if (r.sequence > l) l = r.sequence;
    f->records++;
    return true;
  });
  REQUIRE(st.ok());
  REQUIRE(expected.empty());
  for (const auto& [id, l] : f->model.latest) f->model.ids.push_back(id);
  struct stat sb;
  REQUIRE(::stat((f->path + ".idx").c_str(), &sb) == 0);
  return f;
}

struct Tally {
  uint64_t returned = 0;  // records returned as good
  uint64_t wrong = 0;     // of which not what was written
  uint64_t stale = 0;     // an older version of the id (allowed; counted)
  uint64_t errors = 0;    // reads that failed (allowed)
  uint64_t signals = 0;   // tool processes ended by a signal
  uint64_t open_failed = 0;
  uint64_t recover_ok_verify_dirty = 0;
  std::vector<std::string> examples;
  void Wrong(std::string what) {
    wrong++;
    if (examples.size() < 5) examples.push_back(std::move(what));
  }
};

void CheckRecord(const Model& m, const RecordView& r, const char* path_name,
                 Tally* t) {
  t->returned++;
  auto it = m.by_id.find(r.id);
  if (it != m.by_id.end()) {
    auto jt = it->second.find(r.sequence);
    if (jt != it->second.end() && jt->second.type == r.type &&
        jt->second.value == r.value)
      return;
  }
  t->Wrong(absl::StrCat(path_name, ": id ", r.id, " seq ", r.sequence,
                        " at offset ", r.location.file_offset));
}

// Get returns only a value: it must be one written for the id (values
// name their id and version); older than the latest counts as stale.
void CheckValue(const Model& m, uint64_t id, std::string_view v, Tally* t) {
  t->returned++;
  auto it = m.by_id.find(id);
  bool found = false;
  for (const auto& [seq, w] : it->second) {
    if (w.type == RecordType::kPut && w.value == v) {
      found = true;
      if (seq != m.latest.at(id)) t->stale++;
    }
  }
  if (!found) t->Wrong(absl::StrCat("Get: id ", id));
}

void LibraryReads(const Model& m, const std::string& path, bool read_only,
                  Tally* t) {
  Options o;
  o.read_only = read_only;
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(path, o);
  if (!opened.ok()) {
    t->open_failed++;
    return;
  }
  Store& s = **opened;
  for (uint64_t id : m.ids) {
    absl::StatusOr<std::string_view> g = s.Get(id);
    if (g.ok()) {
      CheckValue(m, id, *g, t);
    } else {
      t->errors++;
    }
    absl::StatusOr<RecordView> r = s.GetRecord(id);
    if (r.ok()) {
      if (r->id != id) t->Wrong(absl::StrCat("GetRecord: asked ", id));
      CheckRecord(m, *r, "GetRecord", t);
      if (r->sequence < m.latest.at(id)) t->stale++;
    }
  }
  std::vector<absl::StatusOr<std::string_view>> values = s.MultiGet(m.ids);
  for (size_t i = 0; i < m.ids.size(); ++i) {
    if (values[i].ok()) {
      CheckValue(m, m.ids[i], *values[i], t);
    } else {
      t->errors++;
    }
  }
  auto check = [&](const char* name) {
    return [&, name](const RecordView& r) {
      CheckRecord(m, r, name, t);
      return true;
    };
  };
  if (!s.ForEachLive(check("ForEachLive")).ok()) t->errors++;
  if (!s.ForEachRecord(check("ForEachRecord")).ok()) t->errors++;
  absl::StatusOr<std::unique_ptr<Tailer>> tailer = Tailer::Create(s, {});
  if (tailer.ok()) {
    while (true) {
      absl::StatusOr<std::optional<RecordView>> got =
          (*tailer)->Next(std::chrono::nanoseconds(0));
      if (!got.ok()) {
        t->errors++;
        break;
      }
      if (!got->has_value()) break;
      CheckRecord(m, **got, "Tailer", t);
    }
  }
}

int Run(const std::string& cmd, std::string* out, Tally* t) {
  const int rc = RunCommand(cmd, out);
  if (rc >= 128) t->signals++;
  return rc;
}

// A few ids by `recmap get`, and the whole log by `recmap dump --json`.
void ToolReads(const Model& m, const std::string& path, std::mt19937_64& rng,
               Tally* t) {
  for (int k = 0; k < 3; ++k) {
    const uint64_t id = m.ids[rng() % m.ids.size()];
    std::string out;
    const int rc =
        Run(absl::StrCat(ToolPath(), " get ", path, " ", id, " 2>/dev/null"),
            &out, t);
    if (rc != 0) {
      t->errors++;
      continue;
    }
    while (!out.empty() && out.back() == '\n') out.pop_back();
    CheckValue(m, id, out, t);
  }
  std::string out;
  Run(absl::StrCat(ToolPath(), " dump --json --encoding hex ", path,
                   " 2>/dev/null"),
      &out, t);
  size_t pos = 0;
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    const std::string line = out.substr(pos, eol - pos);
    pos = eol + 1;
    // A field's value: a number, or a string (without its quotes).
    auto field = [&](const std::string& key) {
      const size_t a = line.find("\"" + key + "\":");
      if (a == std::string::npos) return std::string();
      size_t b = a + key.size() + 3;
      if (b < line.size() && line[b] == '"') {
        ++b;
        return line.substr(b, line.find('"', b) - b);
      }
      const size_t e = line.find_first_of(",}", b);
      return line.substr(b, e == std::string::npos ? e : e - b);
    };
    RecordView r;
    const std::string type = field("type");
    if (type == "padding" || line.empty() || line[0] != '{') continue;
    const std::string hex = field("value_hex");
    if (!absl::SimpleAtoi(field("seq"), &r.sequence) ||
        !absl::SimpleAtoi(field("id"), &r.id) ||
        !absl::SimpleAtoi(field("offset"), &r.location.file_offset))
      continue;
    r.type = type == "put" ? RecordType::kPut : RecordType::kDelete;
    const std::string value = absl::HexStringToBytes(hex);
    r.value = value;
    CheckRecord(m, r, "dump", t);
  }
}

void FlipBytes(const std::string& path, std::mt19937_64& rng) {
  std::string data = ReadFile(path);
  if (data.empty()) return;
  const int n = 1 + static_cast<int>(rng() % 8);
  for (int k = 0; k < n; ++k) {
    const size_t at = rng() % data.size();
    data[at] = static_cast<char>(data[at] ^ (1 + rng() % 255));
  }
  WriteFile(path, data);
}

void Copy(const std::string& from, const std::string& to) {
  WriteFile(to, ReadFile(from));
}

TEST_CASE("corruption campaign: byte flips in stores with index files",
          "[corruption][campaign]") {
  static Fixture* f = BuildFixture();
  const Model& m = f->model;
  const uint64_t trials = testing::ScaledCount(200);
  std::mt19937_64 rng(0x11c0ffee);
  Tally with_index, without_index, after_recover;
  uint64_t store_flips = 0, idx_flips = 0, recovered = 0, recover_failed = 0;
  for (uint64_t trial = 0; trial < trials; ++trial) {
    TempDir dir;
    const std::string path = dir.File("s.rmap");
    Copy(f->path, path);
    Copy(f->path + ".idx", path + ".idx");
    const uint64_t where = rng() % 4;  // 0,1: store; 2: index; 3: both
    if (where != 2) {
      FlipBytes(path, rng);
      store_flips++;
    }
    if (where >= 2) {
      FlipBytes(path + ".idx", rng);
      idx_flips++;
    }
    const std::string plain = dir.File("plain.rmap");  // the same, no .idx
    Copy(path, plain);

    LibraryReads(m, path, /*read_only=*/true, &with_index);
    ToolReads(m, path, rng, &with_index);
    LibraryReads(m, plain, /*read_only=*/true, &without_index);
    if (trial % 4 == 0) ToolReads(m, plain, rng, &without_index);
    // Writable opens (recovery in memory and on the file) every other
    // trial: the CI run stays well under a minute on a loaded machine.
    if (trial % 2 == 0) {
      LibraryReads(m, path, /*read_only=*/false, &with_index);
      LibraryReads(m, plain, /*read_only=*/false, &without_index);
    }

    // Recovery, in the mode the trial picks; success must mean clean.
    RecoverOptions ro;
    ro.mode = trial % 2 == 0 ? RecoveryMode::kTolerateTornTail
                             : RecoveryMode::kSalvage;
    absl::StatusOr<RecoverResult> r = RecoverStore(path, ro);
    if (r.ok() && r->remaining_damage.empty()) {
      recovered++;
      absl::StatusOr<VerifyReport> v = VerifyStore(path);
      if (!v.ok() || !v->clean()) {
        after_recover.recover_ok_verify_dirty++;
        after_recover.Wrong(absl::StrCat(
            "trial ", trial, ": recover ok, verify: ",
            v.ok() ? absl::StrCat(v->issues.size(), " issues: ",
                                  v->issues.empty() ? "" : v->issues[0].what)
                   : v.status().ToString()));
      }
      LibraryReads(m, path, /*read_only=*/true, &after_recover);
    } else {
      recover_failed++;
    }
  }
  auto print = [](const char* name, const Tally& t) {
    std::printf(
        "corruption campaign %-15s returned %llu, wrong %llu, stale %llu, "
        "read errors %llu, opens refused %llu, signals %llu\n",
        name, (unsigned long long)t.returned, (unsigned long long)t.wrong,
        (unsigned long long)t.stale, (unsigned long long)t.errors,
        (unsigned long long)t.open_failed, (unsigned long long)t.signals);
    for (const std::string& e : t.examples)
      std::printf("  wrong: %s\n", e.c_str());
  };
  std::printf(
      "corruption campaign: %llu trials over a %llu-record, %d-writer store "
      "(%llu flipped in the store file, %llu in the index file); recover "
      "succeeded %llu, refused %llu\n",
      (unsigned long long)trials, (unsigned long long)f->records, kWriters,
      (unsigned long long)store_flips, (unsigned long long)idx_flips,
      (unsigned long long)recovered, (unsigned long long)recover_failed);
  RECMAP_FIGURES(
      "corruption_campaign: trials=%llu records=%llu wrong_with_index=%llu "
      "wrong_without_index=%llu wrong_after_recover=%llu signals=%llu "
      "recover_ok_verify_dirty=%llu",
      (unsigned long long)trials, (unsigned long long)f->records,
      (unsigned long long)with_index.wrong,
      (unsigned long long)without_index.wrong,
      (unsigned long long)after_recover.wrong,
      (unsigned long long)(with_index.signals + without_index.signals),
      (unsigned long long)after_recover.recover_ok_verify_dirty);
  print("with index:", with_index);
  print("without index:", without_index);
  print("after recover:", after_recover);
  std::fflush(stdout);
  CHECK(with_index.wrong == 0);
  CHECK(without_index.wrong == 0);
  CHECK(after_recover.wrong == 0);
  CHECK(with_index.signals + without_index.signals == 0);
  CHECK(after_recover.recover_ok_verify_dirty == 0);
}

}  // namespace
}  // namespace recmap
