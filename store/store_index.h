// The offset index of an open store, in two layers: `index_` holds what
// this handle indexed from the log itself; `base_` (may be null) is the
// persisted index (persisted_index.h) of the first base_regions_ regions
// up to their covered tails, adopted at open and mapped read-only. The
// log it covers is never indexed into `index_`, and for every id in
// `index_` its entry is the latest of the id's records in both layers: a
// record past a covered tail can be older than a covered one (the covered
// tails of a background index are not one moment), so IndexRecord puts
// the base's entry in `index_` when it is newer (NewerInBase). Lookups try
// `index_` first.
//
// The base is a hint, never the truth: its entries are bounded by the live
// log before they are followed, and a record located through it is
// checksummed on every read (the trust rules below).
//
// The index follows the log: every read first indexes what writers (of
// any process) published since the last one (Refresh). One lock guards
// the index and the per-region counts in RegionInfo.
#ifndef RECMAP_STORE_STORE_INDEX_H_
#define RECMAP_STORE_STORE_INDEX_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "format.h"
#include "location.h"
#include "offset_index.h"
#include "persisted_index.h"
#include "recmap/options.h"
#include "recmap/record.h"
#include "region.h"
#include "region_set.h"

namespace recmap {

class StoreIndex {
 public:
  struct Config {
    const std::string* path = nullptr;  // the store file's, for errors
    bool verify_checksums_on_read = false;
    RegionSet* regions = nullptr;  // initialised
    // The mapped shared page (its region count says when to refresh).
    char* shared_page = nullptr;
  };

  StoreIndex() = default;
  StoreIndex(const StoreIndex&) = delete;
  StoreIndex& operator=(const StoreIndex&) = delete;

  // Once, at open, after the regions are mapped. Copies what the read
  // paths use per record, so that they reach it without another
  // indirection.
  void Init(const Config& config);

  // --- open
  // Takes the persisted index proven to describe this log; it covers its
  // first regions().size() regions.
  void Adopt(std::unique_ptr<PersistedIndex> base);
  const PersistedIndex* base() const { return base_.get(); }
  // Recovery of region i: seeds its counts from `covered` (the base's
  // entry for it, if the base covers it) and indexes its validated records
  // from `from` to `limit` (ScanRegion's rules, `salvage` included).
  ScanResult IndexRecoveredRegion(uint32_t i, const IndexedRegion* covered,
                                  uint64_t from, uint64_t limit, bool salvage)
      ABSL_LOCKS_EXCLUDED(mu_);
  // After recovery of the first `n` regions: the ones still open are
  // followed by Refresh.
  void FollowRegions(uint32_t n) ABSL_LOCKS_EXCLUDED(mu_);

  // --- reads
  // Brings the index up to date (failures ignored: see RefreshThen).
  void Refresh() ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<RecordView> Lookup(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void MultiGet(std::span<const uint64_t> ids,
                std::vector<absl::StatusOr<std::string_view>>* values)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Store::ForEachLive: every live record (latest put of its id), each
  // verified before fn sees it, in sequence order.
  absl::Status ForEachLive(const std::function<bool(const RecordView&)>& fn)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Brings the index up to date and returns region `region`'s indexed end
  // (0 if never formatted). InvalidArgument if there is no such region.
  absl::StatusOr<uint64_t> IndexedEnd(uint32_t region) ABSL_LOCKS_EXCLUDED(mu_);
  // The record at packed location `packed` (validated when indexed).
  RecordView ViewAt(uint64_t packed) const;

  // Brings the index up to date, then runs fn() under the index lock: fn
  // may read every RegionInfo's counts and call ForEachLatestLocked and
  // memory_bytes, and must not call back into this index.
  template <typename Fn>
  void WithFreshIndex(Fn&& fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    (void)RefreshLocked();  // serves what is mapped
    fn();
  }
  // Store::Refresh: the same, but returns the refresh's first failure
  // instead of running fn, else what fn (an absl::Status) returns.
  template <typename Fn>
  absl::Status RefreshThen(Fn&& fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (absl::Status s = RefreshLocked(); !s.ok()) return s;
    return fn();
  }
  // Calls fn(id, location) for the latest indexed record of every id.
  // Returns false if a persisted-index entry was skipped because it points
  // outside the log it covers -- or, with `check_records`, not at a
  // well-formed put or delete of its own id there (BaseRecordAt: reads the
  // record's header) -- a checksummed but wrong index file: callers that
  // promise every record report DataLoss. Callers that read each record
  // anyway pass check_records, so a forged entry never shows them another
  // id's record.
  template <typename Fn>
  [[nodiscard]] bool ForEachLatestLocked(Fn&& fn,
                                         bool check_records = false) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    bool all_valid = true;
    if (base_ != nullptr) {
      base_->ForEach([&](uint64_t id, uint64_t loc) {
        if (index_.Find(id) != 0) return;
        RecordHeader h;
        if (check_records ? !BaseRecordAt(id, loc, &h)
                          : !BaseEntryInBounds(loc)) {
          all_valid = false;
          return;
        }
        fn(id, loc);
      });
    }
    index_.ForEach(fn);
    return all_valid;
  }
  // Memory held by both layers (the base: its mapped file).
  uint64_t memory_bytes() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return index_.MemoryBytes() + (base_ != nullptr ? base_->file_bytes() : 0);
  }

 private:
  RegionInfo& entry(uint32_t i) const {
    return entries_[i / kRegionChunk].load(
        std::memory_order_acquire)[i % kRegionChunk];
  }
  uint32_t known_regions() const { return c_.regions->known(); }
  uint64_t RegionOffset(uint32_t i) const {
    return kFirstRegionOffset + uint64_t{i} * region_size_;
  }
  // Where the record at packed location `packed` starts in the mapping.
  const char* RecordAt(uint64_t packed) const {
    const Location l = Location::Unpack(packed);
    return l.In(entry(l.region).ref.base);
  }

  // Following the log.
  bool NeedsRefreshLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Indexes what other handles published since the last call. Returns the
  // first failure (mapping new regions, a region header) after doing all it
  // can; the reads that refresh on their own ignore it and serve what is
  // mapped, Refresh() returns it.
  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Indexes region i's records published since it was last looked at.
  absl::Status CatchUpRegionLocked(uint32_t i)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexRecord(uint32_t region, const ScannedRecord& rec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Lookups.
  absl::StatusOr<RecordView> LookupLocked(uint64_t id)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The result of looking up `id`, given what FindLocked returned for it.
  absl::StatusOr<RecordView> ResultFor(uint64_t id,
                                       const absl::StatusOr<uint64_t>& loc)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void MultiGetLocked(std::span<const uint64_t> ids,
                      std::vector<absl::StatusOr<std::string_view>>* values)
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The latest indexed location of `id`, 0 if none; a base location that
  // does not point at a record of `id` inside the covered log gives
  // DataLoss.
  absl::StatusOr<uint64_t> FindLocked(uint64_t id) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // The trust rules for the base's entries.
  // FindLocked's check of a location `loc` read from the persisted index.
  absl::StatusOr<uint64_t> CheckBaseLocation(uint64_t id, uint64_t loc) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Whether a persisted-index location names a whole record header inside
  // the log as this handle sees it now, so that reading that header stays
  // inside the mapping (what the record says is checked by its readers).
  // The file is extended in place while this handle reads it, so its
  // entries are bounded by the live committed tails, not by the tails the
  // file covered at open.
  bool BaseEntryInBounds(uint64_t loc) const {
    const auto [r, offset] = Location::Unpack(loc);
    return r < known_regions() && entry(r).formatted &&
           offset >= kRegionDataOffset &&
           offset + kRecordHeaderSize <= c_.regions->LiveEnd(r);
  }
  // Whether the record at `loc` must be verified before it is believed:
  // true unless this handle's own scans validated it (they read each
  // region from the tail the persisted index covered at open to its
  // indexed end).
  bool NeedsVerify(uint64_t loc) const {
    if (base_ == nullptr) return false;
    const auto [r, offset] = Location::Unpack(loc);
    if (r >= known_regions()) return true;
    const uint64_t from = r < base_regions_ ? base_->regions()[r].tail : 0;
    return offset < from ||
           offset >= entry(r).indexed_end.load(std::memory_order_acquire);
  }
  // The base's location for `id` if the base holds a well-formed record of
  // `id` inside its covered log with a sequence above `sequence`, else 0.
  uint64_t NewerInBase(uint64_t id, uint64_t sequence) const;
  // Whether the record at location `loc` passes its checksum, read up to
  // its region's live end.
  bool RecordVerifies(uint64_t loc) const;
  // Whether persisted-index location `loc` holds a well-formed put or
  // delete of `id` inside the live log; its header in `h`.
  bool BaseRecordAt(uint64_t id, uint64_t loc, RecordHeader* h) const;

  static constexpr uint32_t kRegionChunk = RegionSet::kEntryChunk;

  Config c_;
  // Copies of what the read paths use per record (see Init).
  std::atomic<RegionInfo*>* entries_ = nullptr;  // RegionSet's chunks
  uint64_t region_size_ = 0;

  mutable absl::Mutex mu_;
  OffsetIndex index_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PersistedIndex> base_;
  uint32_t base_regions_ = 0;
  // Regions that may still grow or seal, and how many regions were seen.
  std::vector<uint32_t> open_regions_ ABSL_GUARDED_BY(mu_);
  uint32_t indexed_regions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace recmap

#endif  // RECMAP_STORE_STORE_INDEX_H_
