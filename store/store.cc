// The read paths over the offset index (store_index.h): region scans,
// stats; closing; and the public face, Store.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_lock.h"
#include "file_ops.h"
#include "store_rep.h"

namespace recmap {

StoreRep::~StoreRep() {
  (void)Close();
  if (fd_ >= 0) io::Close(fd_);  // drops every OFD lock of this handle
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
  persister_.Stop();
  if (fd_ >= 0 && opened_)
    persister_.CatchUpAtClose(
        index_.base() != nullptr ? &index_.base()->regions() : nullptr);
  if (absl::Status s = durability_.first_error(); !s.ok()) return s;
  return persister_.first_error();
}

absl::Status StoreRep::CheckWritable() const {
  if (read_only()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": store is open read-only"));
  }
  return absl::OkStatus();
}

absl::Status StoreRep::Refresh() {
  return index_.RefreshThen([&]() -> absl::Status {
    // Regions past the address space this handle reserved (max_file_size)
    // are never mapped: every read misses their records.
    const uint32_t max = regions_.max_regions();
    if (known_regions() >= max &&
        shared_region_count().load(std::memory_order_acquire) > max) {
      struct stat sb;
      if (io::Fstat(fd_, path_, &sb).ok() &&
          static_cast<uint64_t>(sb.st_size) >=
              RegionOffset(max) + region_size()) {
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
  });
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
  ScanResult res = ScanRegion(regions_[region].ref, kRegionDataOffset, *end,
                              options_.recovery_mode == RecoveryMode::kSalvage,
                              [&](const ScannedRecord& rec) {
                                if (skip_padding && IsPadding(rec.header.type))
                                  return true;
                                return fn(ScannedView(region, rec));
                              });
  if (stopped_out != nullptr) *stopped_out = res.stopped;
  return RegionScanStatus(region, res, *end);
}

StoreStats StoreRep::Stats() {
  StoreStats st;
  index_.WithFreshIndex([&] {
    struct stat sb;
    if (io::Fstat(fd_, path_, &sb).ok())
      st.file_size = static_cast<uint64_t>(sb.st_size);
    st.region_size = region_size();
    st.regions = known_regions();
    st.index_memory_bytes = index_.memory_bytes();
    st.unreadable_bytes = recovery_.unreadable_bytes;
    st.unreadable = recovery_.unreadable;
    st.next_sequence = read_only()
                           ? local_next_sequence_
                           : next_sequence().load(std::memory_order_acquire);
    CountLatestLocked(&st);
    for (uint32_t i = 0; i < st.regions; ++i)
      st.region_stats.push_back(RegionStatsLocked(i, &st));
  });
  return st;
}

void StoreRep::CountLatestLocked(StoreStats* st) {
  // A persisted entry that does not point at a record of its id is left
  // out of the counts (Stats cannot fail; ForEachLive and Get report it).
  (void)index_.ForEachLatestLocked(
      [&](uint64_t, uint64_t packed) {
        RecordView v = ViewAt(packed);
        if (v.type == RecordType::kPut) {
          st->live_records++;
          st->live_payload_bytes += v.value.size();
        } else {
          st->tombstones++;
        }
      },
      /*check_records=*/true);
}

RegionStats StoreRep::RegionStatsLocked(uint32_t i, StoreStats* st) {
  const RegionInfo& ri = regions_[i];
  RegionStats rs;
  rs.index = i;
  rs.file_offset = RegionOffset(i);
  rs.formatted = ri.formatted;
  rs.capacity_bytes = region_size() - kRegionDataOffset;
  rs.records = ri.records;
  rs.fill_bytes = ri.fill;
  rs.unreadable_bytes = ri.unreadable_bytes;
  st->records += ri.records;
  st->payload_bytes += ri.payload_bytes;
  if (!ri.formatted) return rs;
  RegionHeader rh;
  if (rh.DecodeFrom(ri.ref.base, kPageSize).ok()) rs.epoch = rh.epoch;
  rs.committed_tail = ri.ref.committed_tail().load(std::memory_order_acquire);
  rs.durable_tail = ri.ref.DurableTail();
  rs.durable_tail_valid = rs.durable_tail != 0;
  rs.sealed = ri.ref.sealed();
  rs.owner_pid = ri.ref.owner_pid().load(std::memory_order_acquire);
  absl::StatusOr<bool> held =
      IsLockedByOther(fd_, kLockRegionBase + i, LockKind::kShared);
  rs.owner_alive = held.ok() && *held;
  return rs;
}

absl::Status StoreRep::Sync() {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  return durability_.Sync(regions_);
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
  bool stopped = false;
  for (uint32_t i = 0; i < n && !stopped; ++i) {
    if (absl::Status s =
            rep_->ForEachInRegion(i, fn, /*skip_padding=*/true, &stopped);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
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
