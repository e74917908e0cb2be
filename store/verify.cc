#include "verify.h"

#include <sys/stat.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "file_ops.h"
#include "recmap/store.h"
#include "region.h"
#include "store_peer.h"
#include "store_rep.h"

namespace recmap {
namespace {

struct Latest {
  uint64_t sequence = 0;
  uint64_t file_offset = 0;
  RecordType type = RecordType::kZero;
};

// The next 8-aligned offset in [from, limit) holding a valid record, or 0.
uint64_t NextValid(const RegionRef& r, uint64_t from, uint64_t limit) {
  for (uint64_t pos = from; pos + kRecordHeaderSize <= limit; pos += 8) {
    ScannedRecord rec;
    if (CheckRecordAt(r, pos, limit, &rec) == ScanStop::kLimit) return pos;
  }
  return 0;
}

// One verification: the report it fills and what it learns on the way.
class Verifier {
 public:
  Verifier(Store& store, VerifyReport* out, const VerifyProgressFn& progress)
      : store_(store),
        rep_(StorePeer::Rep(store)),
        out_(*out),
        progress_(progress) {
    done_.bytes_total = uint64_t{out_.regions} * rep_.region_size();
  }

  // Tells `progress` that the regions' bytes below `bytes` are checked.
  void Report(uint64_t bytes) {
    if (!progress_) return;
    done_.bytes = bytes;
    done_.records = out_.records;
    progress_(done_);
  }
  void ReportDone() { Report(done_.bytes_total); }

  // Bytes past the last whole region.
  void CheckTrailingBytes(const std::string& path) {
    const uint64_t trailing = store_.last_recovery().trailing_bytes;
    if (trailing == 0) return;
    struct stat st;
    const uint64_t size =
        io::Stat(path, &st).ok() ? static_cast<uint64_t>(st.st_size) : 0;
    Issue(-1, size - trailing,
          absl::StrCat(trailing, " bytes past the last whole region"));
  }

  // Region `i`: its header, its committed tail and every record of its log,
  // resuming past damage at the next valid record.
  void CheckRegion(uint32_t i) {
    const uint64_t region_start = uint64_t{i} * rep_.region_size();
    Report(region_start);
    StoreRep::RegionInfo& ri = rep_.region(i);
    const uint64_t base = rep_.RegionOffset(i);
    if (!ri.formatted) {
      if (ri.damaged)
        Issue(i, base, absl::StrCat("region header: ", ri.damage));
      return;  // else: a trailing region whose header never reached disk
    }
    const RegionRef& r = ri.ref;
    const uint64_t committed = r.committed_tail().load();
    const bool tail_ok = r.PlausibleTail(committed);
    if (!tail_ok) {
      Issue(i, base + kRegionStatePageOffset,
            absl::StrCat("invalid committed tail ", committed));
    }
    // Beside live writers only the published part is stable.
    const uint64_t limit =
        out_.writers_live ? (tail_ok ? committed : kRegionDataOffset) : r.size;
    const uint64_t published = tail_ok ? committed : 0;
    uint64_t pos = kRegionDataOffset;
    while (pos < limit) {
      ScanResult res =
          ScanRegion(r, pos, limit, false, [&](const ScannedRecord& rec) {
            CountRecord(i, base + rec.offset, rec.header);
            if (out_.records % 16384 == 0) Report(region_start + rec.offset);
          });
      pos = NextAfterStop(i, res, limit, published);
    }
  }

  // The index must resolve every id to its latest record.
  void CheckIndex() {
    for (const auto& [id, l] : latest_) {
      absl::StatusOr<RecordView> v = store_.GetRecord(id);
      if (IsTombstone(l.type)) {
        if (v.ok()) {
          Issue(-1, v->location.file_offset,
                absl::StrCat("index: deleted id ", id, " still resolves"));
        }
        continue;
      }
      out_.indexed_ids++;
      if (!v.ok() || v->sequence != l.sequence ||
          v->location.file_offset != l.file_offset) {
        Issue(-1, l.file_offset,
              absl::StrCat("index: id ", id,
                           " does not resolve to its "
                           "latest record (sequence ",
                           l.sequence, ")"));
      }
    }
  }

 private:
  void Issue(int64_t region, uint64_t offset, std::string what) {
    out_.issues.push_back({region, offset, std::move(what)});
  }

  // A valid record of region `i` at file offset `at`.
  void CountRecord(uint32_t i, uint64_t at, const RecordHeader& h) {
    out_.records++;
    if (IsPadding(h.type)) return;
    out_.payload_bytes += h.length;
    if (h.type == RecordType::kPut) out_.puts++;
    if (h.type == RecordType::kDelete) out_.deletes++;
    auto [it, fresh] = sequences_.try_emplace(h.sequence, at);
    if (!fresh) {
      Issue(i, at,
            absl::StrCat("sequence ", h.sequence,
                         " also used by the record at ", it->second));
    }
    Latest& l = latest_[h.id];
    if (h.sequence > l.sequence) l = {h.sequence, at, h.type};
  }

  // Judges where a scan of region `i` stopped (`published`: its committed
  // tail, or 0 if implausible) and returns where to resume, or `limit` if
  // the region is done.
  uint64_t NextAfterStop(uint32_t i, const ScanResult& res, uint64_t limit,
                         uint64_t published) {
    const RegionRef& r = rep_.region(i).ref;
    const uint64_t base = rep_.RegionOffset(i);
    if (!IsDamage(res.stop)) {
      if (res.end < published) {
        Issue(i, base + res.end,
              absl::StrCat("log ends (", ScanStopName(res.stop),
                           ") below the committed tail at ", base + published,
                           ": published records missing"));
      }
      return limit;
    }
    const uint64_t durable = r.DurableTail();
    const uint64_t next = NextValid(r, res.end + 8, limit);
    const uint64_t promised = std::max(published, durable);
    if (next == 0 && res.end >= promised) {
      out_.torn_tails++;  // an unfinished record past the tail: normal
      return limit;
    }
    Issue(i, base + res.end,
          absl::StrCat(ScanStopName(res.stop),
                       res.end < durable ? " below the durable tail" : "",
                       next != 0 ? absl::StrCat("; valid records resume at ",
                                                base + next)
                                 : std::string()));
    return next == 0 ? limit : next;
  }

  Store& store_;
  StoreRep& rep_;
  VerifyReport& out_;
  absl::flat_hash_map<uint64_t, Latest> latest_;
  absl::flat_hash_map<uint64_t, uint64_t> sequences_;  // sequence -> offset
  const VerifyProgressFn& progress_;
  VerifyProgress done_;
};

}  // namespace

absl::StatusOr<VerifyReport> VerifyStore(const std::string& path,
                                         const VerifyProgressFn& progress) {
  Options o;
  o.read_only = true;
  o.recovery_mode = RecoveryMode::kSalvage;
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(path, o);
  if (!opened.ok()) return opened.status();
  Store& store = **opened;
  VerifyReport out;
  out.writers_live = !store.last_recovery().full_recovery;
  out.regions = StorePeer::Rep(store).known_regions();
  Verifier v(store, &out, progress);
  v.CheckTrailingBytes(path);
  for (uint32_t i = 0; i < out.regions; ++i) v.CheckRegion(i);
  v.ReportDone();
  // Beside live writers the index moves on while we look: skip.
  if (!out.writers_live) v.CheckIndex();
  return out;
}

}  // namespace recmap
