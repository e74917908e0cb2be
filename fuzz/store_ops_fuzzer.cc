// Fuzzes the store as a whole: the input decodes into a sequence of
// operations -- put, delete, append (through the store's own writer or one
// of two extra Writers), get, sync, clean reopen in a chosen recovery mode,
// a read-only second handle, offline compaction, and a simulated crash --
// run against a real store file and against a plain in-memory model.
//
// The model keeps, per region, the records written there in order, and for
// each id its latest record. Every Get, every ForEachLive and the records
// of every region must match it. A simulated crash snapshots the file as
// the kernel holds it (so it is what a killed process leaves), drops the
// handle, and may then damage the snapshot as a power loss would: zeroes
// from, or garbage at, a random offset past the region's tail at the last
// completed Sync, optionally rewinding the region's committed tail to that
// synced tail. The store must then open in the default mode, and each
// region must hold a prefix of its records that keeps every synced record
// and every record whose checksummed bytes end before the damage: the only
// losses the durability rules permit (docs/DESIGN.md, "Recovery").
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "coding.h"
#include "format.h"
#include "fuzz_util.h"
#include "recmap/compaction.h"
#include "recmap/store.h"
#include "store_peer.h"
#include "store_rep.h"
#include "verify.h"

namespace recmap::fuzz {
namespace {

constexpr uint64_t kRegionSize = kMinRegionSize;    // 16 KiB: rotate often
constexpr uint64_t kPutIdBase = uint64_t{1} << 48;  // apart from Append ids
constexpr int kExtraWriters = 2;
constexpr int kMaxOps = 256;
constexpr int kMaxReopens = 12;

struct Rec {
  uint64_t sequence = 0;
  uint64_t id = 0;
  RecordType type = RecordType::kPut;
  std::string value;
  bool synced = false;
};

// What one region of the store holds, as read back through the API.
struct Found {
  uint64_t sequence, id, offset;  // offset: region-relative
  RecordType type;
  std::string value;
};

std::string MakeValue(uint64_t seq, size_t len) {
  std::string v(len, static_cast<char>('a' + seq % 26));
  if (len >= 8) EncodeFixed64(v.data(), seq);
  return v;
}

class Harness {
 public:
  Harness() : path_(ScratchDir() + "/ops.rmap") {}
  ~Harness() { Close(); }

  void Run(ByteReader* in);

 private:
  Options MakeOptions(RecoveryMode mode) const {
    Options o;
    o.create_if_missing = true;
    o.region_size = kRegionSize;
    o.max_file_size = uint64_t{4} << 20;
    o.recovery_mode = mode;
    return o;
  }
  void Open(RecoveryMode mode) {
    absl::StatusOr<std::unique_ptr<Store>> s =
        Store::Open(path_, MakeOptions(mode));
    FUZZ_CHECK(s.ok(), "open failed: " + s.status().ToString());
    store_ = std::move(*s);
  }
  void Close() {
    reader_.reset();
    for (auto& w : writers_) w.reset();
    store_.reset();
  }

  int64_t WriterRegion(int w) {
    if (w > 0) return writers_[w - 1] ? writers_[w - 1]->region() : -1;
    StoreRep* rep = &StorePeer::Rep(*store_);
    absl::MutexLock lock(&rep->default_writer_mu());
    return rep->default_writer() ? rep->default_writer()->region() : -1;
  }
  uint64_t PickId(ByteReader* in) {
    const uint8_t b = in->U8();
    if ((b & 1) && !appended_.empty())
      return appended_[(b >> 1) % appended_.size()];
    return kPutIdBase + (b >> 1) % 24;
  }
  size_t PickLength(ByteReader* in) {
    const uint8_t b = in->U8();
    // Mostly small values; some near a region's capacity to force rotation.
    return b < 224 ? b : (b - 224) * 260;
  }

  void Write(int w, RecordType type, uint64_t id, size_t len, bool append);
  void Get(uint64_t id);
  void Sync();
  void Reopen(RecoveryMode mode);
  void Compact();
  void Crash(ByteReader* in);
  void CheckReader(ByteReader* in);
  std::vector<std::vector<Found>> ReadRegions(Store* store);
  void CheckRegionsMatchModel();
  void CheckAll(Store* store);
  void RebuildLatest();

  const std::string path_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Writer> writers_[kExtraWriters];
  std::unique_ptr<Store> reader_;
  std::map<uint32_t, std::vector<Rec>> regions_;  // records per region
  std::map<uint64_t, Rec> latest_;                // latest record per id
  std::vector<uint64_t> appended_;                // ids Append returned
  std::vector<uint64_t> synced_tail_;  // per region, at the last Sync
  int reopens_ = 0;
};

void Harness::Write(int w, RecordType type, uint64_t id, size_t len,
                    bool append) {
  if (w > 0 && !writers_[w - 1]) {
    absl::StatusOr<std::unique_ptr<Writer>> nw = store_->NewWriter();
    FUZZ_CHECK(nw.ok(), "NewWriter: " + nw.status().ToString());
    writers_[w - 1] = std::move(*nw);
  }
  const uint64_t seq =
      StorePeer::Rep(*store_).next_sequence().load(std::memory_order_acquire);
  const std::string value = MakeValue(seq, len);
  absl::Status s;
  if (append) {
    absl::StatusOr<uint64_t> got =
        w == 0 ? store_->Append(value) : writers_[w - 1]->Append(value);
    s = got.status();
    if (got.ok()) {
      FUZZ_CHECK(*got == seq, absl::StrCat("Append returned id ", *got,
                                           ", expected sequence ", seq));
      id = *got;
      appended_.push_back(id);
    }
  } else if (type == RecordType::kDelete) {
    s = w == 0 ? store_->Delete(id) : writers_[w - 1]->Delete(id);
  } else {
    s = w == 0 ? store_->Put(id, value) : writers_[w - 1]->Put(id, value);
  }
  if (absl::IsResourceExhausted(s)) return;  // max_file_size reached
  FUZZ_CHECK(s.ok(), "write failed: " + s.ToString());
  FUZZ_CHECK(StorePeer::Rep(*store_).next_sequence().load() == seq + 1,
             "a write did not take exactly one sequence number");
  const int64_t region = WriterRegion(w);
  FUZZ_CHECK(region >= 0, "a writer that wrote owns no region");
  for (int o = 0; o <= kExtraWriters; ++o) {
    if (o != w) {
      FUZZ_CHECK(WriterRegion(o) != region, "two writers share a region");
    }
  }
  Rec rec{seq, id, type, type == RecordType::kDelete ? "" : value, false};
  regions_[static_cast<uint32_t>(region)].push_back(rec);
  latest_[id] = rec;
}

void Harness::Get(uint64_t id) {
  absl::StatusOr<RecordView> v = store_->GetRecord(id);
  auto it = latest_.find(id);
  if (it == latest_.end() || it->second.type == RecordType::kDelete) {
    FUZZ_CHECK(
        absl::IsNotFound(v.status()),
        absl::StrCat("Get(", id, ") of an absent id: ", v.status().ToString()));
    return;
  }
  FUZZ_CHECK(v.ok(), absl::StrCat("Get(", id, "): ", v.status().ToString()));
  FUZZ_CHECK(v->sequence == it->second.sequence && v->value == it->second.value,
             absl::StrCat("Get(", id, ") returned sequence ", v->sequence,
                          ", the model has ", it->second.sequence));
}

void Harness::Sync() {
  absl::Status s = store_->Sync();
  FUZZ_CHECK(s.ok(), "Sync: " + s.ToString());
  StoreStats st = store_->Stats();
  synced_tail_.assign(st.regions, kRegionDataOffset);
  for (uint32_t i = 0; i < st.regions; ++i) {
    synced_tail_[i] = st.region_stats[i].committed_tail;
    FUZZ_CHECK(st.region_stats[i].durable_tail == synced_tail_[i],
               absl::StrCat("region ", i, ": durable tail ",
                            st.region_stats[i].durable_tail,
                            " != committed tail after Sync"));
  }
  for (auto& [r, recs] : regions_) {
    for (Rec& rec : recs) rec.synced = true;
  }
  for (auto& [id, rec] : latest_) rec.synced = true;
}

std::vector<std::vector<Found>> Harness::ReadRegions(Store* store) {
  std::vector<std::vector<Found>> out(store->Stats().regions);
  for (uint32_t i = 0; i < out.size(); ++i) {
    const uint64_t base = kFirstRegionOffset + i * kRegionSize;
    absl::Status s = store->ForEachInRegion(i, [&](const RecordView& v) {
      // Padding (resume markers after a page closed by Sync) is the
      // store's own bookkeeping, not a record of the model.
      if (v.type == RecordType::kPadding) return true;
      out[i].push_back({v.sequence, v.id, v.location.file_offset - base, v.type,
                        std::string(v.value)});
      return true;
    });
    FUZZ_CHECK(s.ok(),
               absl::StrCat("ForEachInRegion(", i, "): ", s.ToString()));
  }
  return out;
}

void Harness::CheckRegionsMatchModel() {
  std::vector<std::vector<Found>> found = ReadRegions(store_.get());
  for (uint32_t i = 0; i < found.size(); ++i) {
    const std::vector<Rec>& want = regions_[i];
    FUZZ_CHECK(found[i].size() == want.size(),
               absl::StrCat("region ", i, " holds ", found[i].size(),
                            " records, the model ", want.size()));
    for (size_t k = 0; k < want.size(); ++k) {
      const Found& f = found[i][k];
      FUZZ_CHECK(f.sequence == want[k].sequence && f.id == want[k].id &&
                     f.type == want[k].type && f.value == want[k].value,
                 absl::StrCat("region ", i, " record ", k, " differs"));
    }
  }
  for (const auto& [r, recs] : regions_) {
    FUZZ_CHECK(r < found.size() || recs.empty(), "a region disappeared");
  }
}

void Harness::CheckAll(Store* store) {
  std::map<uint64_t, const Rec*> want;
  for (const auto& [id, rec] : latest_) {
    absl::StatusOr<RecordView> v = store->GetRecord(id);
    if (rec.type == RecordType::kDelete) {
      FUZZ_CHECK(absl::IsNotFound(v.status()),
                 absl::StrCat("deleted id ", id, ": ", v.status().ToString()));
      continue;
    }
    want[id] = &rec;
    FUZZ_CHECK(v.ok() && v->sequence == rec.sequence && v->value == rec.value,
               absl::StrCat("id ", id, ": ", v.status().ToString()));
  }
  size_t n = 0;
  absl::Status s = store->ForEachLive([&](const RecordView& v) {
    auto it = want.find(v.id);
    FUZZ_CHECK(it != want.end() && it->second->sequence == v.sequence &&
                   it->second->value == v.value,
               absl::StrCat("ForEachLive returned id ", v.id,
                            " the model does not hold"));
    ++n;
    return true;
  });
  FUZZ_CHECK(s.ok(), "ForEachLive: " + s.ToString());
  FUZZ_CHECK(n == want.size(),
             absl::StrCat("ForEachLive returned ", n,
                          " records, the model has ", want.size()));
  FUZZ_CHECK(store->Stats().live_records == want.size(),
             "Stats live_records disagrees with the model");
}

void Harness::RebuildLatest() {
  latest_.clear();
  for (const auto& [r, recs] : regions_) {
    for (const Rec& rec : recs) {
      auto it = latest_.find(rec.id);
      if (it == latest_.end() || it->second.sequence < rec.sequence) {
        latest_[rec.id] = rec;
      }
    }
  }
  std::vector<uint64_t> kept;
  for (uint64_t id : appended_) {
    if (latest_.count(id) != 0) kept.push_back(id);
  }
  appended_ = std::move(kept);
}

void Harness::Reopen(RecoveryMode mode) {
  Close();
  Open(mode);
  CheckRegionsMatchModel();
  CheckAll(store_.get());
}

// Offline compaction: the new log holds exactly the latest put of each id,
// with its id, sequence and value; the model becomes that log, all synced.
void Harness::Compact() {
  Close();
  absl::StatusOr<CompactionResult> r = recmap::Compact(path_, {});
  FUZZ_CHECK(r.ok(), "Compact: " + r.status().ToString());
  Open(RecoveryMode::kTolerateTornTail);
  std::map<uint64_t, Rec> live;
  for (const auto& [id, rec] : latest_) {
    if (rec.type == RecordType::kPut) live[id] = rec;
  }
  std::vector<std::vector<Found>> found = ReadRegions(store_.get());
  regions_.clear();
  size_t n = 0;
  for (uint32_t i = 0; i < found.size(); ++i) {
    for (const Found& f : found[i]) {
      auto it = live.find(f.id);
      FUZZ_CHECK(it != live.end() && f.type == RecordType::kPut &&
                     f.sequence == it->second.sequence &&
                     f.value == it->second.value,
                 absl::StrCat("compaction kept a record that is not the "
                              "latest put of id ",
                              f.id));
      Rec rec = it->second;
      rec.synced = true;
      regions_[i].push_back(rec);
      ++n;
    }
  }
  FUZZ_CHECK(n == live.size(), absl::StrCat("compaction kept ", n, " of ",
                                            live.size(), " live records"));
  latest_ = live;
  for (auto& [id, rec] : latest_) rec.synced = true;
  RebuildLatest();
  StoreStats st = store_->Stats();
  synced_tail_.assign(st.regions, kRegionDataOffset);
  for (uint32_t i = 0; i < st.regions; ++i) {
    synced_tail_[i] = st.region_stats[i].committed_tail;
  }
  CheckAll(store_.get());
}

void Harness::Crash(ByteReader* in) {
  CheckRegionsMatchModel();
  // Where each record's checksummed bytes end, per region.
  std::vector<std::vector<Found>> before = ReadRegions(store_.get());
  std::string image = ReadFileOrDie(path_);
  Close();
  const uint32_t nregions =
      static_cast<uint32_t>((image.size() - kFirstRegionOffset) / kRegionSize);
  // Per region: the first damaged byte (region-relative), or none.
  std::vector<uint64_t> damage(nregions, kRegionSize);
  const int n = in->U8() % 3;  // 0: a process crash, nothing lost
  for (int k = 0; k < n && nregions > 0; ++k) {
    const uint32_t r = in->Below(nregions);
    const uint64_t floor = std::max(
        r < synced_tail_.size() ? synced_tail_[r] : 0, kRegionDataOffset);
    const uint8_t kind = in->U8();
    const uint64_t span = kRegionSize - floor;
    if (span == 0) continue;  // the region is full and synced
    const uint64_t off =
        floor +
        (kind & 4 ? in->U16() * uint64_t{8} : uint64_t{in->U16()}) % span;
    char* base = image.data() + kFirstRegionOffset + r * kRegionSize;
    if (kind & 1) {
      std::memset(base + off, 0, kRegionSize - off);
    } else {
      std::string_view junk = in->Bytes(1 + in->U8() % 64);
      const size_t len = std::min<uint64_t>(junk.size(), kRegionSize - off);
      std::memcpy(base + off, junk.data(), len);
    }
    if (kind & 2) {
      // The state page as it was at the last Sync.
      EncodeFixed64(base + kRegionStatePageOffset + kStateCommittedTail, floor);
    }
    damage[r] = std::min(damage[r], off);
  }
  WriteFileOrDie(path_, image);
  Open(RecoveryMode::kTolerateTornTail);

  std::vector<std::vector<Found>> after = ReadRegions(store_.get());
  FUZZ_CHECK(after.size() >= nregions, "regions disappeared in a crash");
  for (uint32_t i = 0; i < nregions; ++i) {
    std::vector<Rec>& recs = regions_[i];
    FUZZ_CHECK(before[i].size() == recs.size(), "pre-crash listing");
    FUZZ_CHECK(after[i].size() <= recs.size(),
               absl::StrCat("region ", i, " gained records in a crash"));
    size_t must_keep = 0;
    for (size_t k = 0; k < recs.size(); ++k) {
      const uint64_t end =
          before[i][k].offset + kRecordHeaderSize + recs[k].value.size();
      if (recs[k].synced || end <= damage[i]) must_keep = k + 1;
    }
    FUZZ_CHECK(after[i].size() >= must_keep,
               absl::StrCat("region ", i, " lost records it had to keep: ",
                            after[i].size(), " of ", recs.size(), " survive, ",
                            must_keep, " had to"));
    for (size_t k = 0; k < after[i].size(); ++k) {
      const Found& f = after[i][k];
      FUZZ_CHECK(f.sequence == recs[k].sequence && f.id == recs[k].id &&
                     f.type == recs[k].type && f.value == recs[k].value,
                 absl::StrCat("region ", i, " record ", k,
                              " after a crash is not the record written"));
    }
    recs.resize(after[i].size());
  }
  RebuildLatest();
  CheckRegionsMatchModel();
  CheckAll(store_.get());
}

void Harness::CheckReader(ByteReader* in) {
  if (!reader_ || (in->U8() & 1)) {
    Options o;
    o.read_only = true;
    o.max_file_size = uint64_t{4} << 20;
    reader_.reset();
    absl::StatusOr<std::unique_ptr<Store>> r = Store::Open(path_, o);
    FUZZ_CHECK(r.ok(), "read-only open: " + r.status().ToString());
    reader_ = std::move(*r);
  }
  CheckAll(reader_.get());
}

void Harness::Run(ByteReader* in) {
  Open(RecoveryMode::kTolerateTornTail);
  for (int ops = 0; ops < kMaxOps && !in->empty(); ++ops) {
    const uint8_t op = in->U8();
    const int w = (op >> 4) % (kExtraWriters + 1);
    switch ((op & 15) % 10) {
      case 0:
      case 1: {
        const uint64_t id = PickId(in);
        Write(w, RecordType::kPut, id, PickLength(in), false);
        break;
      }
      case 2:
        Write(w, RecordType::kDelete, PickId(in), 0, false);
        break;
      case 3:
        Write(w, RecordType::kPut, 0, PickLength(in), true);
        break;
      case 4:
        Get(PickId(in));
        break;
      case 5:
        Sync();
        break;
      case 6:
        if (reopens_++ < kMaxReopens) {
          static constexpr RecoveryMode kModes[] = {
              RecoveryMode::kTolerateTornTail,
              RecoveryMode::kAbsoluteConsistency, RecoveryMode::kSalvage};
          const uint8_t how = in->U8() % 4;
          if (how == 3) {
            Compact();
          } else {
            Reopen(kModes[how]);
          }
        }
        break;
      case 7:
        if (reopens_++ < kMaxReopens) Crash(in);
        break;
      case 8:
        CheckReader(in);
        break;
      case 9:
        CheckAll(store_.get());
        break;
    }
  }
  CheckRegionsMatchModel();
  CheckAll(store_.get());
  // A store written only through the API, crashes included once recovered,
  // passes fsck.
  Close();
  absl::StatusOr<VerifyReport> report = VerifyStore(path_);
  FUZZ_CHECK(report.ok(), "VerifyStore: " + report.status().ToString());
  FUZZ_CHECK(report->clean(),
             absl::StrCat("VerifyStore found ", report->issues.size(),
                          " issues, the first: ", report->issues[0].what));
}

}  // namespace
}  // namespace recmap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    recmap::fuzz::ByteReader in(data, size);
    recmap::fuzz::Harness h;
    h.Run(&in);
  }
  recmap::fuzz::ClearScratchDir();
  return 0;
}
