// The internals of an open store, shared by Store, Writer and recmap's own
// library functions (verify, recover, dump, compaction). Not installed.
#ifndef RECMAP_STORE_STORE_REP_H_
#define RECMAP_STORE_STORE_REP_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "background_task.h"
#include "format.h"
#include "mapping.h"
#include "offset_index.h"
#include "persisted_index.h"
#include "recmap/options.h"
#include "recmap/recovery.h"
#include "recmap/store.h"
#include "region.h"

namespace recmap {

// owner_pid value left by recovery: the bytes past the committed tail are
// not known to be zero, so the next claimer must scrub them.
inline constexpr uint32_t kScrubOwner = 0xFFFFFFFF;

// How often a writable handle's background index writer looks for log to
// cover once it has started (index_persister.cc).
inline constexpr absl::Duration kIndexPassInterval = absl::Milliseconds(200);
// A clean close covers the log the background writer left uncovered if it
// is at most this much (a few milliseconds of work), else leaves it to the
// next open.
inline constexpr uint64_t kCloseCatchUpBytes = uint64_t{8} << 20;

class StoreRep {
 public:
  struct RegionInfo {
    RegionRef ref;
    bool formatted = false;
    bool damaged = false;  // stop indexing; see damage
    std::string damage;
    std::atomic<uint64_t> indexed_end{kRegionDataOffset};
    uint64_t records = 0;        // guarded by index_mu_
    uint64_t fill = 0;           // guarded by index_mu_
    uint64_t payload_bytes = 0;  // guarded by index_mu_
    bool done = false;           // sealed and fully indexed
    // Read-only opens: published bytes found unreadable at open (see
    // RecoveryReport::unreadable_bytes).
    uint64_t unreadable_bytes = 0;
  };

  // Per-region state with stable addresses, allocated in chunks as the file
  // grows: a store may reserve room for millions of regions and use three.
  // operator[] is lock-free; Ensure is called under regions_mu_ (or during
  // open) before a region's index is published to other threads.
  class RegionTable {
   public:
    static constexpr uint32_t kChunk = 1024;
    void Init(uint32_t max_regions) {
      max_ = max_regions;
      chunks_ = std::make_unique<std::atomic<RegionInfo*>[]>(
          (max_regions + kChunk - 1) / kChunk);
    }
    ~RegionTable() {
      for (uint32_t c = 0; c < (max_ + kChunk - 1) / kChunk; ++c) {
        delete[] chunks_[c].load(std::memory_order_relaxed);
      }
    }
    void Ensure(uint32_t count) {
      for (uint32_t c = 0; c < (count + kChunk - 1) / kChunk; ++c) {
        if (chunks_[c].load(std::memory_order_acquire) == nullptr) {
          chunks_[c].store(new RegionInfo[kChunk], std::memory_order_release);
        }
      }
    }
    RegionInfo& operator[](uint32_t i) const {
      return chunks_[i / kChunk].load(std::memory_order_acquire)[i % kChunk];
    }

   private:
    uint32_t max_ = 0;
    std::unique_ptr<std::atomic<RegionInfo*>[]> chunks_;
  };

  static absl::StatusOr<std::unique_ptr<StoreRep>> Open(const std::string& path,
                                                        const Options& options);
  ~StoreRep();
  // Store::Close(): the destructor's work but the unmapping, once.
  absl::Status Close();

  // --- identity and layout
  const std::string& path() const { return path_; }
  const Options& options() const { return options_; }
  const StoreInfo& info() const { return info_; }
  bool read_only() const { return options_.read_only; }
  uint64_t region_size() const { return header_.region_size; }
  uint64_t RegionOffset(uint32_t i) const {
    return kFirstRegionOffset + uint64_t{i} * header_.region_size;
  }
  int fd() const { return fd_; }
  const RecoveryReport& recovery() const { return recovery_; }

  // --- shared page words
  // (Inline: the append path touches two of them per record.)
  std::atomic_ref<uint64_t> next_sequence() const {
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(
        map_.base() + kSharedPageOffset + kSharedNextSequence));
  }
  std::atomic_ref<uint64_t> shared_region_count() const {
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(
        map_.base() + kSharedPageOffset + kSharedRegionCount));
  }
  // Tail wake-up words (format.h). Writable handles only: a read-only
  // mapping cannot be stored to.
  std::atomic_ref<uint32_t> tail_waiters() const {
    return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(
        map_.base() + kSharedPageOffset + kSharedTailWaiters));
  }
  std::atomic_ref<uint32_t> tail_futex() const {
    return std::atomic_ref<uint32_t>(*tail_futex_address());
  }
  uint32_t* tail_futex_address() const {
    return reinterpret_cast<uint32_t*>(map_.base() + kSharedPageOffset +
                                       kSharedTailFutex);
  }

  // --- regions
  uint32_t known_regions() const {
    return known_regions_.load(std::memory_order_acquire);
  }
  RegionInfo& region(uint32_t i) { return regions_[i]; }
  // Maps and loads regions other processes have added. Thread-safe.
  absl::Status LoadNewRegions();
  // Formats region `i` in place (new epoch) through the mapping and syncs
  // it. The caller holds the growth lock or is the recovering first writer.
  // `fresh`: the data bytes are known to be zero (just allocated).
  absl::Status FormatRegion(uint32_t i, bool fresh);
  // Growth, under the growth lock: map the first `count` regions after the
  // file was extended, then (once the new region is formatted) publish the
  // count to this process and to every other.
  absl::Status LoadNewRegionsForGrowth(uint32_t count);
  void PublishRegionCount(uint32_t count);
  // Zeroes region i's bytes from `tail` to its end and syncs, so that no
  // stale record past the tail can ever validate again.
  absl::Status ScrubTail(uint32_t i, uint64_t tail);

  // --- index
  absl::Status Refresh() ABSL_LOCKS_EXCLUDED(index_mu_);
  absl::StatusOr<RecordView> Lookup(uint64_t id) ABSL_LOCKS_EXCLUDED(index_mu_);
  // Store::MultiGet.
  void MultiGet(std::span<const uint64_t> ids,
                std::vector<absl::StatusOr<std::string_view>>* values)
      ABSL_LOCKS_EXCLUDED(index_mu_);
  RecordView ViewAt(uint64_t packed) const;
  static uint64_t Pack(uint32_t region, uint64_t offset) {
    return uint64_t{region} << 40 | offset >> 3;
  }
  // Brings the index up to date, then calls fn(id, packed location) for the
  // latest indexed record -- a put or a delete -- of every id, in no
  // particular order. Reads index entries only, never the records they
  // point at (those are the caller's to validate: a persisted-index entry
  // is only known to lie inside the log it covers). `log_records`, if
  // given, is set to the number of puts and deletes indexed
  // (StoreStats::records). Runs under the index lock: fn must not call
  // back into this handle. Errors: DataLoss if a persisted-index entry
  // points outside the log it covers.
  template <typename Fn>
  absl::Status ForEachLatestLocation(Fn&& fn, uint64_t* log_records = nullptr)
      ABSL_LOCKS_EXCLUDED(index_mu_) {
    absl::MutexLock lock(&index_mu_);
    (void)RefreshLocked();
    if (!ForEachLatestLocked(fn)) {
      return absl::DataLossError(
          IndexPathFor(path_) +
          ": an entry points outside the log it covers; delete the file to "
          "rebuild it");
    }
    if (log_records != nullptr) {
      *log_records = 0;
      for (uint32_t i = 0; i < known_regions(); ++i)
        *log_records += regions_[i].records;
    }
    return absl::OkStatus();
  }

  // --- writes
  absl::Status CheckWritable() const;
  absl::Status Sync();
  // fdatasync of the store file. Every flush of a writable handle goes
  // through here: a failure poisons the handle, since Linux may have
  // dropped the dirty pages and a later successful flush would not bring
  // them back. Returns the failure, or the earlier one if poisoned.
  absl::Status FlushFile();
  // Writes `len` bytes at file offset `offset` (through the page cache, so
  // the mapping sees them) and makes just that range durable; poisons the
  // handle on failure as FlushFile does.
  absl::Status WriteDurable(uint64_t offset, const void* data, size_t len);
  absl::Status SyncError() const;
  // msync(MS_SYNC) of the mapped file range [offset, offset + len): makes
  // those bytes durable (a ranged fdatasync, metadata included) without
  // writing back, and write-protecting, the file's other dirty pages --
  // a live writer's region and its prefaulted pages. Poisons the handle
  // on failure as FlushFile does.
  absl::Status FlushRange(uint64_t offset, uint64_t len);
  // A writer of this handle sealed a region: wakes the background index
  // writer (index_persister.cc), if this handle has one and the store is
  // big enough to need one. Cheap: never waits for the index to be written.
  void RegionSealed();
  // True if the background index writer has no run pending or in progress
  // (also when there is none). For tests and the benchmark.
  bool IndexPersisterIdle();
  absl::Mutex& default_writer_mu() { return writer_mu_; }
  std::unique_ptr<Writer>& default_writer()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(writer_mu_) {
    return default_writer_;
  }
  absl::StatusOr<std::unique_ptr<Writer>> NewWriter();
  // Writes a record carrying a given sequence number instead of allocating
  // one (compaction copies records with their ids and sequences). Raises the
  // shared sequence counter past `sequence`. The caller guarantees that no
  // other record in the store carries `sequence` and, for tailing readers'
  // sake, writes in ascending sequence order. Errors as Writer::Put.
  absl::Status WriteWithSequence(Writer& w, RecordType type, uint64_t id,
                                 uint64_t sequence, std::string_view value);

  // --- reads
  absl::Status ForEachLive(const std::function<bool(const RecordView&)>& fn);
  // `skip_padding`: leave out resume markers (Store::ForEachRecord does;
  // Store::ForEachInRegion shows them). `stopped`, if given, is set when
  // fn returned false.
  absl::Status ForEachInRegion(uint32_t region,
                               const std::function<bool(const RecordView&)>& fn,
                               bool skip_padding = false,
                               bool* stopped = nullptr);
  // The pieces of ForEachInRegion, shared with the pipelined scan
  // (scan_pipeline.h). RegionScanEnd: brings the index up to date and
  // returns where a scan of `region` stops (its indexed end), 0 if the
  // region was never formatted; InvalidArgument if there is no such region.
  // Thread-safe.
  absl::StatusOr<uint64_t> RegionScanEnd(uint32_t region)
      ABSL_LOCKS_EXCLUDED(index_mu_);
  // The view of a record a scan of `region` validated.
  RecordView ScannedView(uint32_t region, const ScannedRecord& rec) const {
    RecordView v;
    v.id = rec.header.id;
    v.sequence = rec.header.sequence;
    v.type = rec.header.type;
    v.value = std::string_view(rec.payload, rec.header.length);
    v.location.region = region;
    v.location.file_offset = RegionOffset(region) + rec.offset;
    return v;
  }
  // DataLoss naming the offset if a scan of `region` up to `end` stopped on
  // damage before `end` (and was not stopped by its callback), else OK.
  absl::Status RegionScanStatus(uint32_t region, const ScanResult& res,
                                uint64_t end) const;
  StoreStats Stats();

 private:
  StoreRep() = default;
  absl::Status OpenFile(bool* created);
  absl::Status InitializeNewFile();
  absl::Status ReadHeader(uint64_t file_size);
  absl::Status LoadRegionHeader(uint32_t i, bool allow_unformatted);
  absl::Status Recover(bool full);
  absl::Status RecoverRegion(uint32_t i, bool full, uint64_t* max_seq);
  absl::Status LoadNewRegionsLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(regions_mu_);

  bool NeedsRefreshLocked() const ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // Indexes what other handles published since the last call. Returns the
  // first failure (mapping new regions, a region header, damage below a
  // committed tail) after doing all it can; the reads that refresh on
  // their own ignore it and serve what is mapped, Refresh() returns it.
  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  void IndexRecord(uint32_t region, const ScannedRecord& rec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(index_mu_);
  absl::StatusOr<RecordView> LookupLocked(uint64_t id)
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // The result of looking up `id`, given what FindLocked returned for it.
  absl::StatusOr<RecordView> ResultFor(uint64_t id,
                                       const absl::StatusOr<uint64_t>& loc)
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  void MultiGetLocked(std::span<const uint64_t> ids,
                      std::vector<absl::StatusOr<std::string_view>>* values)
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // Where the record at packed location `packed` starts in the mapping.
  const char* RecordAt(uint64_t packed) const {
    return regions_[static_cast<uint32_t>(packed >> 40)].ref.base +
           ((packed & ((uint64_t{1} << 40) - 1)) << 3);
  }
  // The latest indexed location of `id`, 0 if none; a base location that
  // does not point at a record of `id` inside the covered log gives
  // DataLoss.
  absl::StatusOr<uint64_t> FindLocked(uint64_t id) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
  // FindLocked's check of a location `loc` read from the persisted index.
  absl::StatusOr<uint64_t> CheckBaseLocation(uint64_t id, uint64_t loc) const
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_);
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
      ABSL_SHARED_LOCKS_REQUIRED(index_mu_) {
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
  // Whether a persisted-index location names a whole record header inside
  // the log as this handle sees it now, so that reading that header stays
  // inside the mapping (what the record says is checked by its readers).
  // The file is extended in place while this handle reads it, so its
  // entries are bounded by the live committed tails, not by the tails the
  // file covered at open.
  bool BaseEntryInBounds(uint64_t loc) const {
    const uint64_t region = loc >> 40;
    const uint64_t offset = (loc & ((uint64_t{1} << 40) - 1)) << 3;
    return region < known_regions() && regions_[region].formatted &&
           offset >= kRegionDataOffset &&
           offset + kRecordHeaderSize <= LiveEnd(static_cast<uint32_t>(region));
  }
  // Region i's committed tail as published now (0 if implausible): the end
  // of the records any entry may name.
  uint64_t LiveEnd(uint32_t i) const {
    const RegionRef& r = regions_[i].ref;
    const uint64_t t = r.committed_tail().load(std::memory_order_acquire);
    return r.PlausibleTail(t) ? t : 0;
  }
  // Whether the record at `loc` must be verified before it is believed:
  // true unless this handle's own scans validated it (they read each
  // region from the tail the persisted index covered at open to its
  // indexed end).
  bool NeedsVerify(uint64_t loc) const {
    if (base_ == nullptr) return false;
    const uint32_t region = static_cast<uint32_t>(loc >> 40);
    const uint64_t offset = (loc & ((uint64_t{1} << 40) - 1)) << 3;
    if (region >= known_regions()) return true;
    const uint64_t from =
        region < base_regions_ ? base_->regions()[region].tail : 0;
    return offset < from || offset >= regions_[region].indexed_end.load(
                                          std::memory_order_acquire);
  }
  // Open: maps the persisted index if it proves to describe this log; a
  // writable open removes one that does not.
  void AdoptPersistedIndex();
  // Loads the index file and checks it describes this log; on success it
  // becomes base_. The caller holds kLockIndex.
  [[nodiscard]] absl::Status LoadPersistedIndex();
  // The trust rules every covered region must pass (persisted_index.h):
  // its header is this store's, with the index's epoch, and its covered
  // tail is within its durable tail. Reads the region headers from the
  // mapping, so any thread may call it.
  absl::Status CheckCoverage(const std::vector<IndexedRegion>& covered) const;
  // Region i's live reference and epoch, read from its header in the
  // mapping (not from regions_[i]'s fields, which the indexing thread
  // owns); false if the header is not a valid header of region i.
  bool RegionAt(uint32_t i, RegionRef* ref, uint64_t* epoch) const;
  // The base's location for `id` if the base holds a well-formed record of
  // `id` inside its covered log with a sequence above `sequence`, else 0.
  uint64_t NewerInBase(uint64_t id, uint64_t sequence) const;
  // Whether the record at location `loc` passes its checksum, read up to
  // its region's live end.
  bool RecordVerifies(uint64_t loc) const;
  // Whether persisted-index location `loc` holds a well-formed put or
  // delete of `id` inside the live log; its header in `h`.
  bool BaseRecordAt(uint64_t id, uint64_t loc, RecordHeader* h) const;
  // Background (index_persister.cc): extends the index file in place,
  // covering each region's log up to its committed tail (a region still
  // being written once kOpenRegionStepBytes more are there, unless
  // `to_tail`).
  void PersistIndexPass(const std::atomic<bool>& stop, bool to_tail = false);
  // The pieces of a pass: the writer of the file, opened or created (false
  // if neither could be done), and one batch of region i's records from
  // *from towards `to` (false when the region's coverage cannot go on).
  bool OpenIndexWriter(const std::vector<RegionRef>& refs, uint64_t log_bytes);
  // Grows the index file (PersistedIndexWriter::Grow); a failure other
  // than a stop goes to IndexFailed. False unless it grew.
  bool GrowIndex(uint64_t slots, uint32_t region_capacity,
                 const std::atomic<bool>& stop);
  bool IndexRegionBatch(const std::vector<RegionRef>& refs, uint32_t i,
                        uint64_t epoch, uint64_t to,
                        const std::atomic<bool>& stop, uint64_t* from);
  // Clean close: covers the rest of the log on the closing thread -- all of
  // it with persist_index_in_background off, else only if little is left.
  void CatchUpIndexAtClose();
  // Keeps the first failure of background or close-time index work for
  // Close(), and passes each to Options::on_background_error.
  void IndexFailed(const absl::Status& s);

  std::string path_;
  Options options_;
  StoreInfo info_;
  FileHeader header_;
  int fd_ = -1;
  Mapping map_;
  RecoveryReport recovery_;

  uint32_t max_regions_ = 0;
  RegionTable regions_;
  std::atomic<uint32_t> known_regions_{0};
  absl::Mutex regions_mu_;

  mutable absl::Mutex index_mu_;
  // The offset index is two layers: `index_` holds what this handle
  // indexed from the log itself; `base_` (may be null) is the persisted
  // index of the first base_regions_ regions up to their covered tails,
  // mapped read-only. The log it covers is never indexed into `index_`,
  // and for every id in `index_` its entry is the latest of the id's
  // records in both layers: a record past a covered tail can be older than
  // a covered one (the covered tails of a background index are not one
  // moment), so IndexRecord puts the base's entry in `index_` when it is
  // newer (NewerInBase). Lookups try `index_` first.
  OffsetIndex index_ ABSL_GUARDED_BY(index_mu_);
  bool opened_ = false;  // Open completed: the destructor may persist
  std::unique_ptr<PersistedIndex> base_;
  uint32_t base_regions_ = 0;
  std::vector<uint32_t> open_regions_ ABSL_GUARDED_BY(index_mu_);
  uint32_t indexed_regions_ ABSL_GUARDED_BY(index_mu_) = 0;
  uint64_t local_next_sequence_ = 1;  // read-only handles

  absl::Mutex writer_mu_;
  std::unique_ptr<Writer> default_writer_ ABSL_GUARDED_BY(writer_mu_);

  // The background index writer (null: read-only, or persisting off) and
  // its handle on the index file (its thread only, or the closing thread
  // once it is stopped).
  std::unique_ptr<BackgroundTask> index_task_;
  std::unique_ptr<PersistedIndexWriter> index_writer_;

  absl::Mutex sync_mu_;  // serialises Sync() calls
  mutable absl::Mutex error_mu_;
  // The first failed flush of this handle; once set, Sync() always fails.
  absl::Status sync_error_ ABSL_GUARDED_BY(error_mu_);
  // The first failed update of the index file (Close() returns it).
  absl::Status index_error_ ABSL_GUARDED_BY(error_mu_);
  bool closed_ = false;

  friend class Store;
};

}  // namespace recmap

#endif  // RECMAP_STORE_STORE_REP_H_
