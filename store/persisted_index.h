// The persisted offset index: a sidecar file "<store>.idx" (layout in
// index_format.h, docs/FORMAT.md "Index file") holding the offset index of
// a prefix of each region's log, so that an open maps it and scans only the
// log past the covered prefixes. The background index writer
// (index_persister.cc) extends it in place, in batches, as the log grows:
// nothing is ever rewritten whole except when the table grows, and a close
// has nothing to write.
//
// The log stays the truth; the file is a cache, trusted when it proves it
// describes this store's log (PersistedIndex::Load, CheckCoverage in
// index_persister.h):
// - its header checksum, and (unless a batch was cut short, below) the
//   checksum of every page and of the page sums;
// - it names this store file (uuid) and region size;
// - it was written during the current boot of the machine (the boot id in
//   its header): its pages, and the records they point at, were then
//   written through the page cache that a crash of any process leaves
//   intact, so no sync is needed. After a reboot (power loss, kernel crash)
//   the file is not trusted, and is rebuilt;
// - for every region it covers, the region has the same epoch (a region
//   reformatted since is a different log) and a committed tail at or past
//   the covered tail;
// - only in the default recovery mode.
// A batch cut short (its writer was killed) leaves the state bit
// kIndexStateUpdating: its page sums are then not checked (the pages were
// written in this boot by recmap itself; the covered tails, written last,
// still describe what was covered before the batch), and the next writer
// recomputes them. Every record located through the file is verified
// (checksum, id) before it is returned, and entries may point past the
// covered tails as they were at open (the file is extended while readers
// use it): readers bound them by the live log instead.
#ifndef RECMAP_STORE_PERSISTED_INDEX_H_
#define RECMAP_STORE_PERSISTED_INDEX_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index_format.h"
#include "offset_index.h"

namespace recmap {

// The path of the index file of the store at `store_path`.
std::string IndexPathFor(const std::string& store_path);

// This machine's boot id (/proc/sys/kernel/random/boot_id); all zeros if it
// cannot be read (then no index file is ever trusted).
std::array<uint8_t, 16> CurrentBootId();

// What the index knows about one covered region.
struct IndexedRegion {
  uint64_t epoch = 0;
  uint64_t tail = 0;  // region-relative end of the covered records
  uint64_t records = 0;
  uint64_t fill = 0;
  uint64_t payload_bytes = 0;
};

// A mapping of an index file, validated. Lookups read the live file (the
// background writer of another handle may extend it while this one reads:
// a slot's location is stored after its id, so a reader sees either the
// empty slot or the whole entry); regions() and max_sequence() are as of
// Load.
class PersistedIndex {
 public:
  ~PersistedIndex();
  PersistedIndex(const PersistedIndex&) = delete;
  PersistedIndex& operator=(const PersistedIndex&) = delete;

  // Maps and validates the file at `path` against the store's `uuid` and
  // `region_size` (every rule above but the per-region ones). The caller
  // holds kLockIndex (shared) so that no batch is in progress. Errors:
  // NotFound (no file), DataLoss (damaged, truncated, another store's,
  // another version), FailedPrecondition (written before the last reboot).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PersistedIndex>> Load(
      const std::string& path, const std::array<uint8_t, 16>& uuid,
      uint64_t region_size);

  // The location for `id`, or 0.
  uint64_t Find(uint64_t id) const;
  // Starts loading the home slot of `id` into the cache.
  void Prefetch(uint64_t id) const {
    if (slots_ != 0)
      __builtin_prefetch(slots_base_ +
                         IndexHome(IndexHash(id), slots_) * kIndexSlotSize);
  }
  // Calls fn(id, location) for every entry.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (uint64_t i = 0; i < slots_; ++i) {
      uint64_t id, loc;
      ReadSlot(i, &id, &loc);
      if (loc != 0) fn(id, loc);
    }
  }

  const std::vector<IndexedRegion>& regions() const { return regions_; }
  uint64_t slots() const { return slots_; }
  uint64_t entries() const { return entries_; }
  uint64_t max_sequence() const { return max_sequence_; }
  uint64_t file_bytes() const { return size_; }
  // The file was left by a batch cut short (its page sums were not
  // checked).
  bool was_updating() const { return was_updating_; }

 private:
  PersistedIndex() = default;
  void ReadSlot(uint64_t i, uint64_t* id, uint64_t* loc) const {
    const char* p = slots_base_ + i * kIndexSlotSize;
    *loc = std::atomic_ref<const uint64_t>(
               *reinterpret_cast<const uint64_t*>(p + 8))
               .load(std::memory_order_acquire);
    // An empty slot's id may be being stored right now; a filled one's id
    // was stored before its location.
    *id = *loc != 0 ? *reinterpret_cast<const uint64_t*>(p) : 0;
  }

  const char* map_ = nullptr;
  uint64_t size_ = 0;
  const char* slots_base_ = nullptr;
  uint64_t slots_ = 0;
  uint64_t entries_ = 0;
  uint64_t max_sequence_ = 0;
  bool was_updating_ = false;
  std::vector<IndexedRegion> regions_;
};

// The background index writer's handle on the file: a shared writable
// mapping of a file allocated in full (a store into it never faults on a
// full disk). Used by one thread, under kLockIndex held exclusively, so one
// writer per file at a time. Updates come in batches: BeginUpdate, any
// number of Upsert / SetRegion / RaiseMaxSequence, EndUpdate; a batch cut
// short by a crash is detected (kIndexStateUpdating) and harmless, as long
// as every location upserted is a record below its region's committed
// tail and the covered tails are advanced only at EndUpdate.
class PersistedIndexWriter {
 public:
  ~PersistedIndexWriter();
  PersistedIndexWriter(const PersistedIndexWriter&) = delete;
  PersistedIndexWriter& operator=(const PersistedIndexWriter&) = delete;

  // Opens the existing file at `path` for update, validated as Load does
  // (a file left updating gets its page sums recomputed). Errors as Load.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PersistedIndexWriter>>
  Open(const std::string& path, const std::array<uint8_t, 16>& uuid,
       uint64_t region_size);
  // Creates an empty file with `slots` slots (at least 64) and room for
  // `region_capacity` regions, atomically replacing any file at `path` (a
  // temporary file, allocated, written, renamed). Errors: those of the file
  // operations (a full disk: ResourceExhausted).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PersistedIndexWriter>>
  Create(const std::string& path, const std::array<uint8_t, 16>& uuid,
         uint64_t region_size, uint64_t slots, uint32_t region_capacity);

  // Whether `path` still names the file this writer maps (another
  // handle's writer may have replaced it).
  bool IsCurrent() const;
  const std::vector<IndexedRegion>& regions() const { return regions_; }
  uint32_t region_capacity() const { return region_capacity_; }
  uint64_t slots() const { return slots_; }
  uint64_t entries() const { return entries_; }
  uint64_t max_sequence() const { return max_sequence_; }
  // Whether `more` new ids fit without passing the 80% load.
  bool HasRoom(uint64_t more) const {
    return entries_ + more <= slots_ / 5 * 4;
  }

  // Replaces the file by a new one with `slots` slots and room for
  // `region_capacity` regions holding the same entries and regions.
  // Outside a batch only. Errors as Create, and Cancelled if `stop` became
  // true meanwhile; on error the old file stays.
  [[nodiscard]] absl::Status Grow(uint64_t slots, uint32_t region_capacity,
                                  const std::atomic<bool>* stop = nullptr);

  void BeginUpdate(uint32_t region);
  // Stores `location` (non-zero) for `id`: a new id takes an empty slot
  // (the caller checked HasRoom); a known one is replaced only if
  // newer(old_location) says so. False, storing nothing, if `id` is new and
  // no slot is empty (the caller grows the table).
  template <typename Newer>
  bool Upsert(uint64_t id, uint64_t location, Newer&& newer) {
    uint64_t i = IndexHome(IndexHash(id), slots_);
    for (uint64_t n = 0; n < slots_; ++n) {
      char* p = slots_base_ + i * kIndexSlotSize;
      const uint64_t old = LoadLocation(p);
      if (old == 0) {
        *reinterpret_cast<uint64_t*>(p) = id;
        StoreLocation(p, location);
        ++entries_;
        MarkDirty(p);
        return true;
      }
      if (*reinterpret_cast<const uint64_t*>(p) == id) {
        if (old != location && newer(old)) {
          StoreLocation(p, location);
          MarkDirty(p);
        }
        return true;
      }
      if (++i == slots_) i = 0;
    }
    return false;
  }
  // Region entry `i` (< region_capacity()); regions past the last one set
  // before read as covering nothing.
  void SetRegion(uint32_t i, const IndexedRegion& g);
  void RaiseMaxSequence(uint64_t sequence) {
    if (sequence > max_sequence_) max_sequence_ = sequence;
  }
  // Writes the page sums of the pages changed since BeginUpdate, then the
  // header with the new counts, clearing kIndexStateUpdating.
  void EndUpdate();

 private:
  PersistedIndexWriter() = default;
  static uint64_t LoadLocation(const char* slot) {
    return std::atomic_ref<const uint64_t>(
               *reinterpret_cast<const uint64_t*>(slot + 8))
        .load(std::memory_order_relaxed);
  }
  static void StoreLocation(char* slot, uint64_t location) {
    std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(slot + 8))
        .store(location, std::memory_order_release);
  }
  void MarkDirty(const char* p) {
    const uint64_t page = static_cast<uint64_t>(p - map_) / kIndexPageSize;
    dirty_[page / 64] |= uint64_t{1} << (page % 64);
  }
  // A writer of `path` with no file mapped yet.
  static std::unique_ptr<PersistedIndexWriter> New(
      const std::string& path, const std::array<uint8_t, 16>& uuid,
      uint64_t region_size);
  // Maps `size` bytes of the file open at `fd` (writable, shared), or takes
  // `map`, such a mapping, as this writer's, replacing any earlier one.
  // `file` is the path `fd` was opened by (a temporary one while created),
  // for messages.
  [[nodiscard]] absl::Status Map(int fd, uint64_t size,
                                 const std::string& file);
  [[nodiscard]] absl::Status Adopt(int fd, char* map, uint64_t size,
                                   const std::string& file);
  void WriteHeader(uint32_t state, uint32_t updating_region);
  void SumAllPages();

  std::string path_;
  std::array<uint8_t, 16> uuid_{};
  uint64_t region_size_ = 0;
  uint64_t dev_ = 0, ino_ = 0;
  char* map_ = nullptr;
  uint64_t size_ = 0;
  char* slots_base_ = nullptr;
  uint64_t slots_ = 0;
  uint64_t entries_ = 0;
  uint64_t max_sequence_ = 0;
  uint32_t region_capacity_ = 0;
  std::vector<IndexedRegion> regions_;
  std::vector<uint64_t> dirty_;  // one bit per page of the file
};

}  // namespace recmap

#endif  // RECMAP_STORE_PERSISTED_INDEX_H_
