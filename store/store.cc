// The offset index and the read paths: catching up with the log, lookups,
// iteration, stats, and the durability protocol (Sync).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_lock.h"
#include "file_ops.h"
#include "scan_pipeline.h"
#include "store_rep.h"

namespace recmap {

StoreRep::~StoreRep() {
  (void)Close();
  if (fd_ >= 0) ::close(fd_);  // drops every OFD lock of this handle
}

absl::Status StoreRep::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  {
    absl::MutexLock lock(&writer_mu_);
    default_writer_.reset();
  }
  // A close writes nothing of the index whole: the background writer stops
  // between two records, and its file already holds every batch it ended.
  if (index_task_ != nullptr) index_task_->Stop();
  if (fd_ >= 0 && opened_) CatchUpIndexAtClose();
  absl::MutexLock lock(&error_mu_);
  if (!sync_error_.ok()) return sync_error_;
  return index_error_;
}

void StoreRep::IndexFailed(const absl::Status& s) {
  {
    absl::MutexLock lock(&error_mu_);
    if (index_error_.ok())
      index_error_ = absl::Status(
          s.code(), absl::StrCat(IndexPathFor(path_),
                                 ": index file not updated (the log is "
                                 "intact): ",
                                 s.message()));
  }
  if (options_.on_background_error) options_.on_background_error(s);
}

absl::Status StoreRep::CheckWritable() const {
  if (read_only()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": store is open read-only"));
  }
  return absl::OkStatus();
}

RecordView StoreRep::ViewAt(uint64_t packed) const {
  const uint32_t region = static_cast<uint32_t>(packed >> 40);
  const uint64_t offset = (packed & ((uint64_t{1} << 40) - 1)) << 3;
  const char* p = regions_[region].ref.base + offset;
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

void StoreRep::IndexRecord(uint32_t region, const ScannedRecord& rec) {
  RegionInfo& ri = regions_[region];
  ri.fill += RecordSize(rec.header.length);
  // Padding (resume markers) takes room but is not a record of the store.
  if (rec.header.type == RecordType::kPadding) return;
  ri.records++;
  ri.payload_bytes += rec.header.length;
  const uint64_t packed = Pack(region, rec.offset);
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
  const char* p =
      regions_[old >> 40].ref.base + ((old & ((uint64_t{1} << 40) - 1)) << 3);
  if (rec.header.sequence > DecodeFixed64(p + kRecordSequenceOffset)) {
    *slot = packed;
  }
}

bool StoreRep::BaseRecordAt(uint64_t id, uint64_t loc, RecordHeader* h) const {
  // The base passed its checksum and matched the log at open; still, never
  // follow it to anything but a well-formed record of this id inside the
  // log it covers.
  if (!BaseEntryInBounds(loc)) return false;
  const uint32_t region = static_cast<uint32_t>(loc >> 40);
  const uint64_t offset = (loc & ((uint64_t{1} << 40) - 1)) << 3;
  return h->DecodeFrom(regions_[region].ref.base + offset) && h->id == id &&
         (h->type == RecordType::kPut || h->type == RecordType::kDelete) &&
         offset + RecordSize(h->length) <= LiveEnd(region);
}

uint64_t StoreRep::NewerInBase(uint64_t id, uint64_t sequence) const {
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

bool StoreRep::RecordVerifies(uint64_t loc) const {
  const uint32_t region = static_cast<uint32_t>(loc >> 40);
  const uint64_t offset = (loc & ((uint64_t{1} << 40) - 1)) << 3;
  ScannedRecord rec;
  return region < known_regions() &&
         CheckRecordAt(regions_[region].ref, offset, LiveEnd(region), &rec) ==
             ScanStop::kLimit;
}

absl::StatusOr<uint64_t> StoreRep::FindLocked(uint64_t id) const {
  if (uint64_t loc = index_.Find(id); loc != 0) return loc;
  if (base_ == nullptr) return 0;
  return CheckBaseLocation(id, base_->Find(id));
}

absl::StatusOr<uint64_t> StoreRep::CheckBaseLocation(uint64_t id,
                                                     uint64_t loc) const {
  RecordHeader h;
  if (loc != 0 && !BaseRecordAt(id, loc, &h)) {
    const uint64_t region = loc >> 40;
    const uint64_t offset = (loc & ((uint64_t{1} << 40) - 1)) << 3;
    // The file is extended by live writers: an entry may name a region this
    // handle has not mapped yet.
    if (region >= known_regions() &&
        const_cast<StoreRep*>(this)->LoadNewRegions().ok() &&
        BaseRecordAt(id, loc, &h))
      return loc;
    return absl::DataLossError(absl::StrCat(
        path_, ": the record for id ", id, " at offset ",
        region < known_regions()
            ? RegionOffset(static_cast<uint32_t>(region)) + offset
            : 0,
        " (located through ", IndexPathFor(path_),
        ") is not a record of that id: damaged record or index file"));
  }
  return loc;
}

bool StoreRep::NeedsRefreshLocked() const {
  if (shared_region_count().load(std::memory_order_acquire) > indexed_regions_)
    return true;
  for (uint32_t i : open_regions_) {
    const RegionInfo& ri = regions_[i];
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

absl::Status StoreRep::RefreshLocked() {
  // A failure to map what other handles added leaves this handle serving
  // what it has mapped; the failure is returned for Refresh() to report.
  absl::Status status = LoadNewRegions();
  const uint32_t known = known_regions();
  for (uint32_t i = indexed_regions_; i < known; ++i)
    open_regions_.push_back(i);
  indexed_regions_ = known;
  size_t keep = 0;
  for (size_t k = 0; k < open_regions_.size(); ++k) {
    const uint32_t i = open_regions_[k];
    RegionInfo& ri = regions_[i];
    if (!ri.formatted && !ri.damaged &&
        ri.ref.committed_tail().load(std::memory_order_acquire) != 0) {
      // Formatted since we looked (first writer recovering a trailing
      // region); its header is synced before its tail is set.
      absl::MutexLock lock(&regions_mu_);
      if (absl::Status s = LoadRegionHeader(i, true); !s.ok() && status.ok())
        status = s;
    }
    if (ri.formatted && !ri.damaged) {
      const uint64_t tail =
          ri.ref.committed_tail().load(std::memory_order_acquire);
      const uint64_t from = ri.indexed_end.load(std::memory_order_relaxed);
      if (tail > from && ri.ref.PlausibleTail(tail)) {
        ScanResult res =
            ScanRegion(ri.ref, from, tail, false,
                       [&](const ScannedRecord& rec) { IndexRecord(i, rec); });
        ri.indexed_end.store(res.end, std::memory_order_release);
        if (res.end < tail) {
          ri.damaged = true;
          ri.damage = absl::StrCat(ScanStopName(res.stop), " at file offset ",
                                   RegionOffset(i) + res.end,
                                   " below the committed tail");
        }
      }
      if (ri.ref.sealed() &&
          ri.indexed_end.load(std::memory_order_relaxed) >=
              ri.ref.committed_tail().load(std::memory_order_acquire)) {
        ri.done = true;
      }
    }
    if (!ri.done && !ri.damaged) open_regions_[keep++] = i;
  }
  open_regions_.resize(keep);
  return status;
}

absl::Status StoreRep::Refresh() {
  absl::MutexLock lock(&index_mu_);
  if (absl::Status s = RefreshLocked(); !s.ok()) return s;
  // Regions past the address space this handle reserved (max_file_size)
  // are never mapped: every read misses their records.
  if (known_regions() >= max_regions_ &&
      shared_region_count().load(std::memory_order_acquire) > max_regions_) {
    struct stat sb;
    if (::fstat(fd_, &sb) == 0 &&
        static_cast<uint64_t>(sb.st_size) >=
            RegionOffset(max_regions_) + region_size()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          path_, ": the file has grown past this handle's max_file_size (",
          options_.max_file_size,
          " bytes); regions beyond it are not read: reopen with a larger "
          "one"));
    }
  }
  // Damage a refresh found stays: its region is no longer indexed, and
  // every later call says so (a formatted region is marked damaged only
  // here).
  for (uint32_t i = 0; i < known_regions(); ++i) {
    const RegionInfo& ri = regions_[i];
    if (ri.formatted && ri.damaged) {
      return absl::DataLossError(
          absl::StrCat(path_, ": region ", i, ": ", ri.damage));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RecordView> StoreRep::LookupLocked(uint64_t id) {
  return ResultFor(id, FindLocked(id));
}

absl::StatusOr<RecordView> StoreRep::ResultFor(
    uint64_t id, const absl::StatusOr<uint64_t>& loc) {
  if (!loc.ok()) return loc.status();
  if (*loc == 0) {
    return absl::NotFoundError(absl::StrCat("id ", id, " not found"));
  }
  // The index is a hint, the checksum the proof: a record this handle
  // indexed from the log passed its checksum then; one located through the
  // persisted index (its covered log was never scanned here) is verified
  // on every read, before anything of its header is believed.
  if (options_.verify_checksums_on_read || NeedsVerify(*loc)) {
    const uint32_t region = static_cast<uint32_t>(*loc >> 40);
    const uint64_t off = (*loc & ((uint64_t{1} << 40) - 1)) << 3;
    const RegionInfo& ri = regions_[region];
    const uint64_t limit = LiveEnd(region);
    ScannedRecord rec;
    const ScanStop stop = CheckRecordAt(ri.ref, off, limit, &rec);
    if (stop != ScanStop::kLimit || rec.header.id != id) {
      return absl::DataLossError(absl::StrCat(
          path_, ": record for id ", id, " at offset ",
          RegionOffset(region) + off, " failed verification (",
          stop != ScanStop::kLimit ? ScanStopName(stop) : "another id's record",
          ")"));
    }
  }
  RecordView v = ViewAt(*loc);
  if (v.type == RecordType::kDelete) {
    return absl::NotFoundError(absl::StrCat("id ", id, " was deleted"));
  }
  return v;
}

absl::StatusOr<RecordView> StoreRep::Lookup(uint64_t id) {
  {
    absl::ReaderMutexLock lock(&index_mu_);
    if (!NeedsRefreshLocked()) return LookupLocked(id);
  }
  absl::MutexLock lock(&index_mu_);
  (void)RefreshLocked();
  return LookupLocked(id);
}

void StoreRep::MultiGet(std::span<const uint64_t> ids,
                        std::vector<absl::StatusOr<std::string_view>>* values) {
  values->clear();
  values->reserve(ids.size());
  {
    absl::ReaderMutexLock lock(&index_mu_);
    if (!NeedsRefreshLocked()) return MultiGetLocked(ids, values);
  }
  absl::MutexLock lock(&index_mu_);
  (void)RefreshLocked();
  MultiGetLocked(ids, values);
}

void StoreRep::MultiGetLocked(
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

absl::Status StoreRep::ForEachLive(
    const std::function<bool(const RecordView&)>& fn) {
  std::vector<std::pair<uint64_t, uint64_t>> live;  // (sequence, packed)
  {
    absl::MutexLock lock(&index_mu_);
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
          IndexPathFor(path_),
          ": an entry does not point at a record of its id in the log it "
          "covers; delete the file to rebuild it"));
    }
  }
  std::sort(live.begin(), live.end());
  for (const auto& [seq, packed] : live) {
    RecordView v = ViewAt(packed);
    const RegionInfo& ri = regions_[v.location.region];
    ScannedRecord rec;
    const uint64_t off =
        v.location.file_offset - RegionOffset(v.location.region);
    if (CheckRecordAt(ri.ref, off, ri.ref.size, &rec) != ScanStop::kLimit) {
      return absl::DataLossError(absl::StrCat(path_, ": record at offset ",
                                              v.location.file_offset,
                                              " failed verification"));
    }
    if (!fn(v)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StoreRep::RegionScanEnd(uint32_t region) {
  uint64_t end;
  {
    absl::MutexLock lock(&index_mu_);
    (void)RefreshLocked();
    if (region >= known_regions()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no region ", region, " (the store has ", known_regions(), ")"));
    }
    end = regions_[region].indexed_end.load(std::memory_order_acquire);
  }
  return regions_[region].formatted ? end : 0;
}

absl::Status StoreRep::RegionScanStatus(uint32_t region, const ScanResult& res,
                                        uint64_t end) const {
  if (res.stopped || res.end >= end || !IsDamage(res.stop))
    return absl::OkStatus();
  return absl::DataLossError(
      absl::StrCat(path_, ": region ", region, ": ", ScanStopName(res.stop),
                   " at file offset ", RegionOffset(region) + res.end));
}

absl::Status StoreRep::ForEachInRegion(
    uint32_t region, const std::function<bool(const RecordView&)>& fn,
    bool skip_padding, bool* stopped_out) {
  absl::StatusOr<uint64_t> end = RegionScanEnd(region);
  if (!end.ok()) return end.status();
  if (stopped_out != nullptr) *stopped_out = false;
  if (*end == 0) return absl::OkStatus();  // never formatted
  ScanResult res =
      ScanRegion(regions_[region].ref, kRegionDataOffset, *end,
                 options_.recovery_mode == RecoveryMode::kSalvage,
                 [&](const ScannedRecord& rec) {
                   if (skip_padding && rec.header.type == RecordType::kPadding)
                     return true;
                   return fn(ScannedView(region, rec));
                 });
  if (stopped_out != nullptr) *stopped_out = res.stopped;
  return RegionScanStatus(region, res, *end);
}

StoreStats StoreRep::Stats() {
  StoreStats st;
  absl::MutexLock lock(&index_mu_);
  (void)RefreshLocked();
  struct stat sb;
  if (::fstat(fd_, &sb) == 0) st.file_size = static_cast<uint64_t>(sb.st_size);
  st.region_size = region_size();
  st.regions = known_regions();
  st.index_memory_bytes =
      index_.MemoryBytes() + (base_ != nullptr ? base_->file_bytes() : 0);
  st.unreadable_bytes = recovery_.unreadable_bytes;
  st.unreadable = recovery_.unreadable;
  st.next_sequence = read_only()
                         ? local_next_sequence_
                         : next_sequence().load(std::memory_order_acquire);
  // A persisted entry that does not point at a record of its id is left
  // out of the counts (Stats cannot fail; ForEachLive and Get report it).
  (void)ForEachLatestLocked(
      [&](uint64_t, uint64_t packed) {
        RecordView v = ViewAt(packed);
        if (v.type == RecordType::kPut) {
          st.live_records++;
          st.live_payload_bytes += v.value.size();
        } else {
          st.tombstones++;
        }
      },
      /*check_records=*/true);
  for (uint32_t i = 0; i < st.regions; ++i) {
    const RegionInfo& ri = regions_[i];
    RegionStats rs;
    rs.index = i;
    rs.file_offset = RegionOffset(i);
    rs.formatted = ri.formatted;
    rs.capacity_bytes = region_size() - kRegionDataOffset;
    rs.records = ri.records;
    rs.fill_bytes = ri.fill;
    rs.unreadable_bytes = ri.unreadable_bytes;
    st.records += ri.records;
    st.payload_bytes += ri.payload_bytes;
    if (ri.formatted) {
      RegionHeader rh;
      if (rh.DecodeFrom(ri.ref.base, kPageSize).ok()) rs.epoch = rh.epoch;
      rs.committed_tail =
          ri.ref.committed_tail().load(std::memory_order_acquire);
      rs.durable_tail = ri.ref.DurableTail();
      rs.durable_tail_valid = rs.durable_tail != 0;
      rs.sealed = ri.ref.sealed();
      rs.owner_pid = ri.ref.owner_pid().load(std::memory_order_acquire);
      absl::StatusOr<bool> held =
          IsLockedByOther(fd_, kLockRegionBase + i, LockKind::kShared);
      rs.owner_alive = held.ok() && *held;
    }
    st.region_stats.push_back(rs);
  }
  return st;
}

absl::Status StoreRep::SyncError() const {
  absl::MutexLock lock(&error_mu_);
  if (sync_error_.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(path_, ": an earlier flush failed (", sync_error_.message(),
                   "); this handle can no longer promise durability"));
}

absl::Status StoreRep::FlushFile() {
  if (absl::Status s = SyncError(); !s.ok()) return s;
  absl::Status s = io::Fdatasync(fd_, path_);
  if (!s.ok()) {
    absl::MutexLock lock(&error_mu_);
    if (sync_error_.ok()) sync_error_ = s;
  }
  return s;
}

absl::Status StoreRep::WriteDurable(uint64_t offset, const void* data,
                                    size_t len) {
  if (absl::Status s = SyncError(); !s.ok()) return s;
  absl::Status s = io::WriteDurable(fd_, offset, data, len, path_);
  if (!s.ok()) {
    absl::MutexLock lock(&error_mu_);
    if (sync_error_.ok()) sync_error_ = s;
  }
  return s;
}

absl::Status StoreRep::Sync() {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  absl::MutexLock lock(&sync_mu_);
  if (absl::Status s = SyncError(); !s.ok()) return s;
  if (absl::Status s = LoadNewRegions(); !s.ok()) return s;
  const uint32_t n = known_regions();
  std::vector<uint64_t> tails(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    if (regions_[i].formatted) {
      tails[i] =
          regions_[i].ref.committed_tail().load(std::memory_order_acquire);
    }
  }
  // Step 1: every page holding a record below the tails we just read.
  if (absl::Status s = FlushFile(); !s.ok()) return s;
  // Step 2: the durable tails, a floor for recovery after a power loss.
  bool moved = false;
  for (uint32_t i = 0; i < n; ++i) {
    const RegionRef& r = regions_[i].ref;
    if (!regions_[i].formatted || !r.PlausibleTail(tails[i])) continue;
    if (tails[i] > r.DurableTail()) {
      r.SetDurableTail(tails[i]);
      moved = true;
    }
  }
  if (moved) {
    if (absl::Status s = FlushFile(); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// --- Store: the public face.

Store::Store(std::unique_ptr<StoreRep> rep) : rep_(std::move(rep)) {}
Store::~Store() = default;

absl::Status Store::Close() { return rep_->Close(); }

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path,
                                                   const Options& options) {
  absl::StatusOr<std::unique_ptr<StoreRep>> rep = StoreRep::Open(path, options);
  if (!rep.ok()) return rep.status();
  return std::unique_ptr<Store>(new Store(std::move(*rep)));
}

// Runs `fn` on this handle's shared writer, creating it on first use.
template <typename Fn>
auto WithDefaultWriter(StoreRep* rep, Fn fn)
    -> decltype(fn(std::declval<Writer&>())) {
  if (absl::Status s = rep->CheckWritable(); !s.ok()) return s;
  absl::MutexLock lock(&rep->default_writer_mu());
  auto& w = rep->default_writer();
  if (!w) {
    absl::StatusOr<std::unique_ptr<Writer>> nw = rep->NewWriter();
    if (!nw.ok()) return nw.status();
    w = std::move(*nw);
  }
  return fn(*w);
}

absl::Status Store::Put(uint64_t id, std::string_view value) {
  return WithDefaultWriter(rep_.get(),
                           [&](Writer& w) { return w.Put(id, value); });
}

absl::StatusOr<uint64_t> Store::Append(std::string_view value) {
  return WithDefaultWriter(rep_.get(),
                           [&](Writer& w) { return w.Append(value); });
}

absl::Status Store::Delete(uint64_t id) {
  return WithDefaultWriter(rep_.get(), [&](Writer& w) { return w.Delete(id); });
}

absl::StatusOr<std::string_view> Store::Get(uint64_t id) {
  absl::StatusOr<RecordView> v = rep_->Lookup(id);
  if (!v.ok()) return v.status();
  return v->value;
}

absl::StatusOr<RecordView> Store::GetRecord(uint64_t id) {
  return rep_->Lookup(id);
}

std::vector<absl::StatusOr<std::string_view>> Store::MultiGet(
    std::span<const uint64_t> ids) {
  std::vector<absl::StatusOr<std::string_view>> values;
  rep_->MultiGet(ids, &values);
  return values;
}

absl::Status Store::Sync() { return rep_->Sync(); }

absl::StatusOr<std::unique_ptr<Writer>> Store::NewWriter() {
  return rep_->NewWriter();
}

absl::Status Store::ForEachLive(
    const std::function<bool(const RecordView&)>& fn) {
  return rep_->ForEachLive(fn);
}

absl::Status Store::ForEachRecord(
    const std::function<bool(const RecordView&)>& fn) {
  if (absl::Status s = rep_->Refresh(); !s.ok()) return s;
  const uint32_t n = rep_->known_regions();
  // The verifier thread pays off once a scan takes more than a moment;
  // on one CPU it would only take turns with the caller.
  const uint64_t min_bytes = rep_->options().scan_verify_thread_min_bytes;
  bool pipelined = min_bytes == 0;
  if (!pipelined && std::thread::hardware_concurrency() > 1) {
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n && bytes < min_bytes; ++i) {
      bytes += rep_->region(i).indexed_end.load(std::memory_order_acquire) -
               kRegionDataOffset;
    }
    pipelined = bytes >= min_bytes;
  }
  return pipelined ? ForEachRecordPipelined(*rep_, n, fn)
                   : ForEachRecordSerial(*rep_, n, fn);
}

absl::Status Store::ForEachInRegion(
    uint32_t region, const std::function<bool(const RecordView&)>& fn) {
  return rep_->ForEachInRegion(region, fn);
}

absl::Status Store::Refresh() { return rep_->Refresh(); }
StoreStats Store::Stats() { return rep_->Stats(); }
const StoreInfo& Store::info() const { return rep_->info(); }
const RecoveryReport& Store::last_recovery() const { return rep_->recovery(); }

}  // namespace recmap
