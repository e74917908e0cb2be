#include "store_index.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coding.h"

namespace recmap {

void StoreIndex::Init(const Config& config) {
  c_ = config;
  entries_ = c_.regions->entries();
  region_size_ = c_.regions->region_size();
}

void StoreIndex::Adopt(std::unique_ptr<PersistedIndex> base) {
  base_regions_ = static_cast<uint32_t>(base->regions().size());
  base_ = std::move(base);
}

ScanResult StoreIndex::IndexRecoveredRegion(uint32_t i,
                                            const IndexedRegion* covered,
                                            uint64_t from, uint64_t limit,
                                            bool salvage) {
  absl::MutexLock lock(&mu_);
  RegionInfo& ri = entry(i);
  if (covered != nullptr) {
    ri.records = covered->records;
    ri.fill = covered->fill;
    ri.payload_bytes = covered->payload_bytes;
  }
  return ScanRegion(ri.ref, from, limit, salvage,
                    [&](const ScannedRecord& rec) { IndexRecord(i, rec); });
}

void StoreIndex::FollowRegions(uint32_t n) {
  absl::MutexLock lock(&mu_);
  indexed_regions_ = n;
  for (uint32_t i = 0; i < n; ++i) {
    if (!entry(i).done) open_regions_.push_back(i);
  }
}

void StoreIndex::Refresh() {
  absl::MutexLock lock(&mu_);
  (void)RefreshLocked();
}

RecordView StoreIndex::ViewAt(uint64_t packed) const {
  const auto [region, offset] = Location::Unpack(packed);
  const char* p = entry(region).ref.base + offset;
  RecordHeader h;
  (void)h.DecodeFrom(p);  // validated when it was indexed
  RecordView v;
  v.id = h.id;
  v.sequence = h.sequence;
  v.type = h.type;
  v.value = std::string_view(p + kRecordHeaderSize, h.length);
  v.location.region = region;
  v.location.file_offset = RegionOffset(region) + offset;
  return v;
}

void StoreIndex::IndexRecord(uint32_t region, const ScannedRecord& rec) {
  RegionInfo& ri = entry(region);
  ri.fill += RecordSize(rec.header.length);
  // Padding (resume markers) takes room but is not a record of the store.
  if (IsPadding(rec.header.type)) return;
  ri.records++;
  ri.payload_bytes += rec.header.length;
  const uint64_t packed = Location::Pack(region, rec.offset);
  uint64_t* slot = index_.FindOrInsert(rec.header.id);
  if (*slot == 0) {
    // The first record of this id past the covered tails may be older than
    // the base's (store_rep.h, index_).
    const uint64_t b =
        base_ != nullptr && rec.header.sequence <= base_->max_sequence()
            ? NewerInBase(rec.header.id, rec.header.sequence)
            : 0;
    *slot = b != 0 ? b : packed;
    return;
  }
  // Latest write wins: compare with the sequence of the indexed record.
  const uint64_t old = *slot;
  // An entry taken from the base is trusted only once its record verifies;
  // if it does not, only a record newer than anything the base covers can
  // replace it (its real sequence is unknown).
  if (NeedsVerify(old) && !RecordVerifies(old)) {
    if (rec.header.sequence > base_->max_sequence()) *slot = packed;
    return;
  }
  const char* p = RecordAt(old);
  if (rec.header.sequence > DecodeFixed64(p + kRecordSequenceOffset)) {
    *slot = packed;
  }
}

bool StoreIndex::BaseRecordAt(uint64_t id, uint64_t loc,
                              RecordHeader* h) const {
  // The base passed its checksum and matched the log at open; still, never
  // follow it to anything but a well-formed record of this id inside the
  // log it covers.
  if (!BaseEntryInBounds(loc)) return false;
  const auto [region, offset] = Location::Unpack(loc);
  return h->DecodeFrom(entry(region).ref.base + offset) && h->id == id &&
         IsUserRecord(h->type) &&
         offset + RecordSize(h->length) <= c_.regions->LiveEnd(region);
}

uint64_t StoreIndex::NewerInBase(uint64_t id, uint64_t sequence) const {
  const uint64_t loc = base_->Find(id);
  RecordHeader h;
  // A base entry that does not point at a record of `id` is never
  // followed: the record found in the log stands.
  if (loc == 0 || !BaseRecordAt(id, loc, &h)) return 0;
  // The base's record was never checksummed in this process: a damaged one
  // (whose sequence means nothing) wins, so that reads of `id` report the
  // damage instead of returning an older version.
  if (!RecordVerifies(loc)) return loc;
  return h.sequence > sequence ? loc : 0;
}

bool StoreIndex::RecordVerifies(uint64_t loc) const {
  const auto [region, offset] = Location::Unpack(loc);
  ScannedRecord rec;
  return region < known_regions() &&
         CheckRecordAt(entry(region).ref, offset, c_.regions->LiveEnd(region),
                       &rec) == ScanStop::kLimit;
}

absl::StatusOr<uint64_t> StoreIndex::FindLocked(uint64_t id) const {
  if (uint64_t loc = index_.Find(id); loc != 0) return loc;
  if (base_ == nullptr) return 0;
  return CheckBaseLocation(id, base_->Find(id));
}

absl::StatusOr<uint64_t> StoreIndex::CheckBaseLocation(uint64_t id,
                                                       uint64_t loc) const {
  RecordHeader h;
  if (loc != 0 && !BaseRecordAt(id, loc, &h)) {
    const auto [region, offset] = Location::Unpack(loc);
    // The file is extended by live writers: an entry may name a region this
    // handle has not mapped yet.
    if (region >= known_regions() && c_.regions->LoadNew().ok() &&
        BaseRecordAt(id, loc, &h))
      return loc;
    return absl::DataLossError(absl::StrCat(
        *c_.path, ": the record for id ", id, " at offset ",
        region < known_regions() ? RegionOffset(region) + offset : 0,
        " (located through ", IndexPathFor(*c_.path),
        ") is not a record of that id: damaged record or index file"));
  }
  return loc;
}

bool StoreIndex::NeedsRefreshLocked() const {
  if (MappedWord64(c_.shared_page, kSharedRegionCount)
          .load(std::memory_order_acquire) > indexed_regions_)
    return true;
  for (uint32_t i : open_regions_) {
    const RegionInfo& ri = entry(i);
    if (ri.damaged) continue;
    if (!ri.formatted) {
      if (ri.ref.committed_tail().load(std::memory_order_acquire) != 0)
        return true;
      continue;
    }
    if (ri.ref.committed_tail().load(std::memory_order_acquire) >
        ri.indexed_end.load(std::memory_order_relaxed))
      return true;
    if (ri.ref.sealed()) return true;  // to retire it from open_regions_
  }
  return false;
}

absl::Status StoreIndex::RefreshLocked() {
  // A failure to map what other handles added leaves this handle serving
  // what it has mapped; the failure is returned for Refresh() to report.
  absl::Status status = c_.regions->LoadNew();
  const uint32_t known = known_regions();
  for (uint32_t i = indexed_regions_; i < known; ++i)
    open_regions_.push_back(i);
  indexed_regions_ = known;
  size_t keep = 0;
  for (size_t k = 0; k < open_regions_.size(); ++k) {
    const uint32_t i = open_regions_[k];
    if (absl::Status s = CatchUpRegionLocked(i); !s.ok() && status.ok())
      status = s;
    const RegionInfo& ri = entry(i);
    if (!ri.done && !ri.damaged) open_regions_[keep++] = i;
  }
  open_regions_.resize(keep);
  return status;
}

absl::Status StoreIndex::CatchUpRegionLocked(uint32_t i) {
  RegionInfo& ri = entry(i);
  absl::Status status;
  if (!ri.formatted && !ri.damaged &&
      ri.ref.committed_tail().load(std::memory_order_acquire) != 0) {
    // Formatted since we looked (first writer recovering a trailing
    // region); its header is synced before its tail is set.
    status = c_.regions->ReloadHeader(i);
  }
  if (!ri.formatted || ri.damaged) return status;
  const uint64_t tail = ri.ref.committed_tail().load(std::memory_order_acquire);
  const uint64_t from = ri.indexed_end.load(std::memory_order_relaxed);
  if (tail > from && ri.ref.PlausibleTail(tail)) {
    ScanResult res =
        ScanRegion(ri.ref, from, tail, false,
                   [&](const ScannedRecord& rec) { IndexRecord(i, rec); });
    ri.indexed_end.store(res.end, std::memory_order_release);
    if (res.end < tail) {
      ri.damaged = true;
      ri.damage =
          absl::StrCat(ScanStopName(res.stop), " at file offset ",
                       RegionOffset(i) + res.end, " below the committed tail");
    }
  }
  if (ri.ref.sealed() &&
      ri.indexed_end.load(std::memory_order_relaxed) >=
          ri.ref.committed_tail().load(std::memory_order_acquire)) {
    ri.done = true;
  }
  return status;
}

absl::StatusOr<RecordView> StoreIndex::LookupLocked(uint64_t id) {
  return ResultFor(id, FindLocked(id));
}

absl::StatusOr<RecordView> StoreIndex::ResultFor(
    uint64_t id, const absl::StatusOr<uint64_t>& loc) {
  if (!loc.ok()) return loc.status();
  if (*loc == 0) {
    return absl::NotFoundError(absl::StrCat("id ", id, " not found"));
  }
  // The index is a hint, the checksum the proof: a record this handle
  // indexed from the log passed its checksum then; one located through the
  // persisted index (its covered log was never scanned here) is verified
  // on every read, before anything of its header is believed.
  if (c_.verify_checksums_on_read || NeedsVerify(*loc)) {
    const auto [region, off] = Location::Unpack(*loc);
    const RegionInfo& ri = entry(region);
    const uint64_t limit = c_.regions->LiveEnd(region);
    ScannedRecord rec;
    const ScanStop stop = CheckRecordAt(ri.ref, off, limit, &rec);
    if (stop != ScanStop::kLimit || rec.header.id != id) {
      return absl::DataLossError(absl::StrCat(
          *c_.path, ": record for id ", id, " at offset ",
          RegionOffset(region) + off, " failed verification (",
          stop != ScanStop::kLimit ? ScanStopName(stop) : "another id's record",
          ")"));
    }
  }
  RecordView v = ViewAt(*loc);
  if (IsTombstone(v.type)) {
    return absl::NotFoundError(absl::StrCat("id ", id, " was deleted"));
  }
  return v;
}

absl::StatusOr<RecordView> StoreIndex::Lookup(uint64_t id) {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!NeedsRefreshLocked()) return LookupLocked(id);
  }
  absl::MutexLock lock(&mu_);
  (void)RefreshLocked();
  return LookupLocked(id);
}

void StoreIndex::MultiGet(
    std::span<const uint64_t> ids,
    std::vector<absl::StatusOr<std::string_view>>* values) {
  values->clear();
  values->reserve(ids.size());
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!NeedsRefreshLocked()) return MultiGetLocked(ids, values);
  }
  absl::MutexLock lock(&mu_);
  (void)RefreshLocked();
  MultiGetLocked(ids, values);
}

void StoreIndex::MultiGetLocked(
    std::span<const uint64_t> ids,
    std::vector<absl::StatusOr<std::string_view>>* values) {
  // Three passes over a batch, each issuing the next batch-worth of cache
  // misses before waiting on any: index slots, then records, then results.
  // A batch of 16 keeps enough misses in flight to cover memory latency
  // without evicting its own prefetches.
  constexpr size_t kBatch = 16;
  absl::StatusOr<uint64_t> locs[kBatch];
  for (size_t b = 0; b < ids.size(); b += kBatch) {
    const size_t m = std::min(kBatch, ids.size() - b);
    for (size_t k = 0; k < m; ++k) {
      index_.Prefetch(ids[b + k]);
      if (base_ != nullptr) base_->Prefetch(ids[b + k]);
    }
    // Raw locations first (checking a base entry reads its record: that
    // waits for the next pass, after the record's prefetch).
    uint64_t raw[kBatch];
    bool from_base[kBatch];
    for (size_t k = 0; k < m; ++k) {
      raw[k] = index_.Find(ids[b + k]);
      from_base[k] = raw[k] == 0 && base_ != nullptr;
      if (from_base[k]) raw[k] = base_->Find(ids[b + k]);
      if (raw[k] != 0 && (!from_base[k] || BaseEntryInBounds(raw[k]))) {
        // The header and the first bytes of the value (a record may
        // straddle a line).
        __builtin_prefetch(RecordAt(raw[k]));
        __builtin_prefetch(RecordAt(raw[k]) + 63);
      }
    }
    for (size_t k = 0; k < m; ++k) {
      locs[k] = from_base[k] ? CheckBaseLocation(ids[b + k], raw[k])
                             : absl::StatusOr<uint64_t>(raw[k]);
    }
    for (size_t k = 0; k < m; ++k) {
      absl::StatusOr<RecordView> v = ResultFor(ids[b + k], locs[k]);
      if (v.ok()) {
        values->emplace_back(v->value);
      } else {
        values->emplace_back(v.status());
      }
    }
  }
}

absl::Status StoreIndex::ForEachLive(
    const std::function<bool(const RecordView&)>& fn) {
  std::vector<std::pair<uint64_t, uint64_t>> live;  // (sequence, packed)
  {
    absl::MutexLock lock(&mu_);
    (void)RefreshLocked();
    live.reserve(index_.size() + (base_ ? base_->entries() : 0));
    if (!ForEachLatestLocked(
            [&](uint64_t, uint64_t packed) {
              RecordView v = ViewAt(packed);
              if (v.type == RecordType::kPut)
                live.emplace_back(v.sequence, packed);
            },
            /*check_records=*/true)) {
      return absl::DataLossError(absl::StrCat(
          IndexPathFor(*c_.path),
          ": an entry does not point at a record of its id in the log it "
          "covers; delete the file to rebuild it"));
    }
  }
  std::sort(live.begin(), live.end());
  for (const auto& [seq, packed] : live) {
    RecordView v = ViewAt(packed);
    const RegionInfo& ri = entry(v.location.region);
    ScannedRecord rec;
    const uint64_t off =
        v.location.file_offset - RegionOffset(v.location.region);
    if (CheckRecordAt(ri.ref, off, ri.ref.size, &rec) != ScanStop::kLimit) {
      return absl::DataLossError(absl::StrCat(*c_.path, ": record at offset ",
                                              v.location.file_offset,
                                              " failed verification"));
    }
    if (!fn(v)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StoreIndex::IndexedEnd(uint32_t region) {
  uint64_t end;
  {
    absl::MutexLock lock(&mu_);
    (void)RefreshLocked();
    if (region >= known_regions()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no region ", region, " (the store has ", known_regions(), ")"));
    }
    end = entry(region).indexed_end.load(std::memory_order_acquire);
  }
  return entry(region).formatted ? end : 0;
}

}  // namespace recmap
