// The internals of an open store, shared by Store, Writer and recmap's own
// library functions (verify, recover, dump, compaction). Not installed.
//
// StoreRep coordinates: opening and recovery (store_open.cc), the offset
// index and the read paths (store.cc), adopting the persisted index
// (store_persist.cc). It hands the rest to one object per responsibility:
// RegionSet (region_set.h) the regions, Durability (durability.h) every
// flush and the poisoning, StoreIndex (store_index.h) the offset index,
// LogRecovery (log_recovery.h) the recovery of each region's log at open,
// IndexPersister (index_persister.h) the background index writer.
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
#include "durability.h"
#include "format.h"
#include "index_persister.h"
#include "location.h"
#include "log_recovery.h"
#include "mapping.h"
#include "offset_index.h"
#include "persisted_index.h"
#include "recmap/options.h"
#include "recmap/recovery.h"
#include "recmap/store.h"
#include "region.h"
#include "region_set.h"
#include "store_index.h"

namespace recmap {

class StoreRep {
 public:
  using RegionInfo = recmap::RegionInfo;

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
  uint64_t RegionOffset(uint32_t i) const { return regions_.Offset(i); }
  int fd() const { return fd_; }
  const RecoveryReport& recovery() const { return recovery_; }

  // --- shared page words
  // (Inline: the append path touches two of them per record.)
  std::atomic_ref<uint64_t> next_sequence() const {
    return MappedWord64(shared_page(), kSharedNextSequence);
  }
  std::atomic_ref<uint64_t> shared_region_count() const {
    return MappedWord64(shared_page(), kSharedRegionCount);
  }
  // Tail wake-up words (format.h). Writable handles only: a read-only
  // mapping cannot be stored to.
  std::atomic_ref<uint32_t> tail_waiters() const {
    return MappedWord32(shared_page(), kSharedTailWaiters);
  }
  std::atomic_ref<uint32_t> tail_futex() const {
    return MappedWord32(shared_page(), kSharedTailFutex);
  }
  uint32_t* tail_futex_address() const {
    return MappedWord32Address(shared_page(), kSharedTailFutex);
  }
  char* shared_page() const { return map_.base() + kSharedPageOffset; }

  // --- regions
  RegionSet& regions() { return regions_; }
  uint32_t known_regions() const { return regions_.known(); }
  RegionInfo& region(uint32_t i) { return regions_[i]; }
  // Maps and loads regions other processes have added. Thread-safe.
  absl::Status LoadNewRegions() { return regions_.LoadNew(); }
  // RegionSet::Format.
  absl::Status FormatRegion(uint32_t i, bool fresh) {
    return regions_.Format(i, fresh);
  }

  // --- index
  // (Inline: Store::Get's one call reaches the index directly.)
  // Store::Refresh: the index brought up to date, or why it cannot be.
  absl::Status Refresh();
  absl::StatusOr<RecordView> Lookup(uint64_t id) { return index_.Lookup(id); }
  // Store::MultiGet.
  void MultiGet(std::span<const uint64_t> ids,
                std::vector<absl::StatusOr<std::string_view>>* values) {
    index_.MultiGet(ids, values);
  }
  RecordView ViewAt(uint64_t packed) const { return index_.ViewAt(packed); }
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
  absl::Status ForEachLatestLocation(Fn&& fn, uint64_t* log_records = nullptr) {
    bool all_valid = true;
    index_.WithFreshIndex([&] {
      all_valid = index_.ForEachLatestLocked(fn);
      if (log_records != nullptr) {
        *log_records = 0;
        for (uint32_t i = 0; i < known_regions(); ++i)
          *log_records += regions_[i].records;
      }
    });
    if (!all_valid) {
      return absl::DataLossError(
          IndexPathFor(path_) +
          ": an entry points outside the log it covers; delete the file to "
          "rebuild it");
    }
    return absl::OkStatus();
  }

  // --- writes
  absl::Status CheckWritable() const;
  absl::Status Sync();
  Durability& durability() { return durability_; }
  // A writer of this handle sealed a region (IndexPersister::RegionSealed).
  void RegionSealed() { persister_.RegionSealed(); }
  // True if the background index writer has no run pending or in progress
  // (also when there is none). For tests and the benchmark.
  bool IndexPersisterIdle() { return persister_.Idle(); }
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
  absl::Status ForEachLive(const std::function<bool(const RecordView&)>& fn) {
    return index_.ForEachLive(fn);
  }
  // `skip_padding`: leave out resume markers (Store::ForEachRecord does;
  // Store::ForEachInRegion shows them). `stopped`, if given, is set when
  // fn returned false.
  absl::Status ForEachInRegion(uint32_t region,
                               const std::function<bool(const RecordView&)>& fn,
                               bool skip_padding = false,
                               bool* stopped = nullptr);
  // The pieces of ForEachInRegion. RegionScanEnd: brings the index up to
  // date and returns where a scan of `region` stops (its indexed end), 0 if
  // the region was never formatted; InvalidArgument if there is no such
  // region. Thread-safe.
  absl::StatusOr<uint64_t> RegionScanEnd(uint32_t region) {
    return index_.IndexedEnd(region);
  }
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
  // The steps of Open, in order.
  absl::Status OpenFile(bool* created);
  // Recovery lock (writable) and whether this open recovers the whole log
  // (no writer is live).
  absl::StatusOr<bool> TakeOpenLocks(bool* created);
  // Creates the file's header pages if it is new, reads and validates the
  // header; returns the file's size.
  absl::StatusOr<uint64_t> ReadOrCreateHeader(bool created);
  // A first writer: gives a cut last region back its zero tail and backs
  // the header and state pages by blocks.
  absl::Status PrepareFile(bool full, uint64_t* file_size);
  // Maps the regions that exist and loads their headers; returns how many.
  // InitRegions: the region set, with room for `reserve` bytes of file.
  void InitRegions(uint64_t reserve);
  absl::StatusOr<uint32_t> MapRegions(bool full, uint64_t file_size);
  // Reports a last region cut inside its header pages as unreadable.
  void ReportCutHeaderPages(uint32_t regions, uint64_t file_size);
  // Registers a writable handle as a writer, fills info_, starts the
  // background index writer.
  absl::Status FinishOpen();
  absl::Status InitializeNewFile();
  absl::Status ReadHeader(uint64_t file_size);
  absl::Status Recover(bool full);

  // Stats' parts, under the index lock.
  void CountLatestLocked(StoreStats* st);
  RegionStats RegionStatsLocked(uint32_t i, StoreStats* st);
  // Open: maps the persisted index if it proves to describe this log; a
  // writable open removes one that does not.
  void AdoptPersistedIndex();
  // Loads the index file and checks it describes this log; on success the
  // index adopts it. The caller holds kLockIndex.
  [[nodiscard]] absl::Status LoadPersistedIndex();

  std::string path_;
  Options options_;
  StoreInfo info_;
  FileHeader header_;
  int fd_ = -1;
  Mapping map_;
  RecoveryReport recovery_;

  // Destroyed in reverse: the persister's thread stops before the regions
  // and the mapping it reads go.
  Durability durability_;
  RegionSet regions_;

  StoreIndex index_;
  bool opened_ = false;  // Open completed: the destructor may persist
  uint64_t local_next_sequence_ = 1;  // read-only handles

  absl::Mutex writer_mu_;
  std::unique_ptr<Writer> default_writer_ ABSL_GUARDED_BY(writer_mu_);

  IndexPersister persister_;
  bool closed_ = false;

  friend class Store;
};

}  // namespace recmap

#endif  // RECMAP_STORE_STORE_REP_H_
