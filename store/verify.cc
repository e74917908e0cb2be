#include "verify.h"

#include <sys/stat.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "recmap/store.h"
#include "region.h"
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

}  // namespace

absl::StatusOr<VerifyReport> VerifyStore(const std::string& path,
                                         const VerifyProgressFn& progress) {
  Options o;
  o.read_only = true;
  o.recovery_mode = RecoveryMode::kSalvage;
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(path, o);
  if (!opened.ok()) return opened.status();
  Store& store = **opened;
  StoreRep* rep = store.rep();
  VerifyReport out;
  const RecoveryReport& recovery = rep->recovery();
  out.writers_live = !recovery.full_recovery;
  auto issue = [&](int64_t region, uint64_t offset, std::string what) {
    out.issues.push_back({region, offset, std::move(what)});
  };
  if (recovery.trailing_bytes != 0) {
    struct stat st;
    uint64_t size = ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
    issue(-1, size - recovery.trailing_bytes,
          absl::StrCat(recovery.trailing_bytes,
                       " bytes past the last whole region"));
  }
  absl::flat_hash_map<uint64_t, Latest> latest;
  absl::flat_hash_map<uint64_t, uint64_t> sequences;  // sequence -> offset
  out.regions = rep->known_regions();
  VerifyProgress done;
  done.bytes_total = uint64_t{out.regions} * rep->region_size();
  auto report = [&](uint64_t bytes) {
    if (!progress) return;
    done.bytes = bytes;
    done.records = out.records;
    progress(done);
  };
  for (uint32_t i = 0; i < out.regions; ++i) {
    const uint64_t region_start = uint64_t{i} * rep->region_size();
    report(region_start);
    StoreRep::RegionInfo& ri = rep->region(i);
    const uint64_t base = rep->RegionOffset(i);
    if (!ri.formatted) {
      if (ri.damaged)
        issue(i, base, absl::StrCat("region header: ", ri.damage));
      continue;  // else: a trailing region whose header never reached disk
    }
    const RegionRef& r = ri.ref;
    const uint64_t committed = r.committed_tail().load();
    const uint64_t durable = r.DurableTail();
    const bool tail_ok = r.PlausibleTail(committed);
    if (!tail_ok) {
      issue(i, base + kRegionStatePageOffset,
            absl::StrCat("invalid committed tail ", committed));
    }
    // Beside live writers only the published part is stable.
    const uint64_t limit =
        out.writers_live ? (tail_ok ? committed : kRegionDataOffset) : r.size;
    const uint64_t published = tail_ok ? committed : 0;
    uint64_t pos = kRegionDataOffset;
    while (pos < limit) {
      ScanResult res =
          ScanRegion(r, pos, limit, false, [&](const ScannedRecord& rec) {
            if (++out.records % 16384 == 0) report(region_start + rec.offset);
            const RecordHeader& h = rec.header;
            if (h.type == RecordType::kPadding) return;
            const uint64_t at = base + rec.offset;
            out.payload_bytes += h.length;
            if (h.type == RecordType::kPut) out.puts++;
            if (h.type == RecordType::kDelete) out.deletes++;
            auto [it, fresh] = sequences.try_emplace(h.sequence, at);
            if (!fresh) {
              issue(i, at,
                    absl::StrCat("sequence ", h.sequence,
                                 " also used by the record at ", it->second));
            }
            Latest& l = latest[h.id];
            if (h.sequence > l.sequence) l = {h.sequence, at, h.type};
          });
      if (!IsDamage(res.stop)) {
        if (res.end < published) {
          issue(i, base + res.end,
                absl::StrCat("log ends (", ScanStopName(res.stop),
                             ") below the committed tail at ", base + published,
                             ": published records missing"));
        }
        break;
      }
      const uint64_t next = NextValid(r, res.end + 8, limit);
      const uint64_t promised = std::max(published, durable);
      if (next == 0 && res.end >= promised) {
        out.torn_tails++;  // an unfinished record past the tail: normal
        break;
      }
      issue(i, base + res.end,
            absl::StrCat(ScanStopName(res.stop),
                         res.end < durable ? " below the durable tail" : "",
                         next != 0 ? absl::StrCat("; valid records resume at ",
                                                  base + next)
                                   : std::string()));
      if (next == 0) break;
      pos = next;
    }
  }
  report(done.bytes_total);
  // The index must resolve every id to its latest record. Beside live
  // writers the index moves on while we look: skip.
  if (!out.writers_live) {
    for (const auto& [id, l] : latest) {
      absl::StatusOr<RecordView> v = store.GetRecord(id);
      if (l.type == RecordType::kDelete) {
        if (v.ok()) {
          issue(-1, v->location.file_offset,
                absl::StrCat("index: deleted id ", id, " still resolves"));
        }
        continue;
      }
      out.indexed_ids++;
      if (!v.ok() || v->sequence != l.sequence ||
          v->location.file_offset != l.file_offset) {
        issue(-1, l.file_offset,
              absl::StrCat("index: id ", id,
                           " does not resolve to its "
                           "latest record (sequence ",
                           l.sequence, ")"));
      }
    }
  }
  return out;
}

}  // namespace recmap
