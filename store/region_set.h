// The regions of an open store: the table of per-region state, following
// growth (by this process or others), formatting a region, and scrubbing
// the bytes past a tail. Shared by the writers, the indexing thread, the
// background index writer and recovery; see each member for its locking.
#ifndef RECMAP_STORE_REGION_SET_H_
#define RECMAP_STORE_REGION_SET_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "format.h"
#include "recmap/options.h"
#include "region.h"

namespace recmap {

class Durability;
class Mapping;

// What this handle knows of one region.
struct RegionInfo {
  RegionRef ref;
  bool formatted = false;
  bool damaged = false;  // stop indexing; see damage
  std::string damage;
  std::atomic<uint64_t> indexed_end{kRegionDataOffset};
  // Guarded by the store's index lock (store_rep.h).
  uint64_t records = 0;
  uint64_t fill = 0;
  uint64_t payload_bytes = 0;
  bool done = false;  // sealed and fully indexed
  // Read-only opens: published bytes found unreadable at open (see
  // RecoveryReport::unreadable_bytes).
  uint64_t unreadable_bytes = 0;
};

class RegionSet {
 public:
  // What the set works on. Every pointer outlives the set.
  struct Config {
    Mapping* map = nullptr;
    int fd = -1;
    const std::string* path = nullptr;
    const FileHeader* header = nullptr;  // validated
    bool read_only = false;
    RecoveryMode recovery_mode = RecoveryMode::kTolerateTornTail;
    Durability* durability = nullptr;
  };

  RegionSet() = default;
  RegionSet(const RegionSet&) = delete;
  RegionSet& operator=(const RegionSet&) = delete;

  // Once, at open, after the header is read: room for `max_regions`.
  void Init(const Config& config, uint32_t max_regions);

  // --- layout (inline: the append path uses them)
  uint64_t region_size() const { return region_size_; }
  uint64_t Offset(uint32_t i) const {
    return kFirstRegionOffset + uint64_t{i} * region_size();
  }
  uint32_t max_regions() const { return max_; }
  // The shared page's region count: what every process has published.
  std::atomic_ref<uint64_t> shared_count() const;

  // --- the table. Lock-free; a region's entry exists once its index is
  // below known().
  uint32_t known() const { return known_.load(std::memory_order_acquire); }
  RegionInfo& operator[](uint32_t i) const { return table_[i]; }
  // The table's chunk array, fixed at Init, for readers that index it
  // themselves without going through the set (StoreIndex): entry i is
  // entries()[i / kEntryChunk].load(acquire)[i % kEntryChunk].
  static constexpr uint32_t kEntryChunk = 1024;
  std::atomic<RegionInfo*>* entries() const { return table_.chunks(); }

  // Open only (single-threaded): creates entries for `count` regions,
  // loads region i's header (LoadHeader), and publishes `count` to this
  // handle.
  void EnsureEntries(uint32_t count) { table_.Ensure(count); }
  void SetKnown(uint32_t count) {
    known_.store(count, std::memory_order_release);
  }

  // Reads region i's header into its entry: formatted, or (when
  // `allow_unformatted` and its log is empty, or in salvage mode) not
  // formatted / damaged. Errors: DataLoss naming the region. Open, or
  // under the growth of another process (ReloadHeader).
  absl::Status LoadHeader(uint32_t i, bool allow_unformatted);
  // LoadHeader(i, true) for a region formatted since this handle mapped
  // it (a first writer recovering a trailing region). Thread-safe.
  absl::Status ReloadHeader(uint32_t i) ABSL_LOCKS_EXCLUDED(mu_);
  // Region i's live reference and epoch read from its header in the
  // mapping (not from its entry, which the indexing thread owns); false
  // if the header is not a valid header of region i. Any thread.
  bool ReadHeaderAt(uint32_t i, RegionRef* ref, uint64_t* epoch) const;
  // Region i's committed tail as published now (0 if implausible).
  uint64_t LiveEnd(uint32_t i) const {
    const RegionRef& r = table_[i].ref;
    const uint64_t t = r.committed_tail().load(std::memory_order_acquire);
    return r.PlausibleTail(t) ? t : 0;
  }

  // --- growth
  // Maps and loads regions other processes have added. Thread-safe.
  absl::Status LoadNew() ABSL_LOCKS_EXCLUDED(mu_);
  // Under the growth lock: map the first `count` regions after the file
  // was extended, then (once the new region is formatted) publish the
  // count to this process and to every other. Errors: ResourceExhausted
  // past max_file_size.
  absl::Status LoadForGrowth(uint32_t count) ABSL_LOCKS_EXCLUDED(mu_);
  void PublishCount(uint32_t count) ABSL_LOCKS_EXCLUDED(mu_);

  // Formats region `i` in place (new epoch) through the mapping and makes
  // it durable. The caller holds the growth lock or is the recovering
  // first writer. `fresh`: the data bytes are known to be zero (just
  // allocated).
  absl::Status Format(uint32_t i, bool fresh);
  // Zeroes region i's bytes from `tail` to its end and syncs, so that no
  // stale record past the tail can ever validate again.
  absl::Status ScrubTail(uint32_t i, uint64_t tail);

 private:
  // Per-region state with stable addresses, allocated in chunks as the
  // file grows: a store may reserve room for millions of regions and use
  // three. operator[] is lock-free; Ensure is called under mu_ (or during
  // open) before a region's index is published to other threads.
  class Table {
   public:
    static constexpr uint32_t kChunk = kEntryChunk;
    void Init(uint32_t max_regions);
    std::atomic<RegionInfo*>* chunks() const { return chunks_.get(); }
    ~Table();
    void Ensure(uint32_t count);
    RegionInfo& operator[](uint32_t i) const {
      return chunks_[i / kChunk].load(std::memory_order_acquire)[i % kChunk];
    }

   private:
    uint32_t max_ = 0;
    std::unique_ptr<std::atomic<RegionInfo*>[]> chunks_;
  };

  absl::Status LoadNewLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The header and state pages of a freshly formatted region `i` with
  // header `rh`, or of a reformatted one.
  absl::Status WriteFreshRegion(uint32_t i, const RegionHeader& rh);
  absl::Status ResetRegion(uint32_t i, const RegionHeader& rh);

  Config c_;
  uint64_t region_size_ = 0;  // c_.header's
  uint32_t max_ = 0;
  Table table_;
  std::atomic<uint32_t> known_{0};
  absl::Mutex mu_;  // growth of the table and of the mapping
};

}  // namespace recmap

#endif  // RECMAP_STORE_REGION_SET_H_
