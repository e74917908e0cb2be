// The persisted offset index: a sidecar file "<store>.idx" holding the
// offset index of a prefix of each region's log -- every record, as of a
// clean close; the sealed regions, as written in the background while
// writers run (index_persister.h) -- so that the next open maps it and
// scans only the log past the covered prefixes (Bitcask's hint files serve
// the same purpose). The log stays the truth: the file is only a cache,
// trusted when it proves it describes this store's log, and ignored (and
// rewritten later) otherwise. docs/FORMAT.md "Index file" specifies it
// byte for byte.
//
// Trust rules (StoreRep::AdoptPersistedIndex):
// - the file is whole: its size matches its header and the XXH3 checksum
//   in its trailer matches its bytes;
// - it names this store file (uuid) and region size;
// - for every region it covers, the region has the same epoch (a region
//   reformatted since is a different log) and a durable tail at or past
//   the covered tail (the covered records were synced before the index was
//   written, and records are never rewritten);
// - only in the default recovery mode (absolute consistency re-verifies
//   every record; salvage scans everything);
// and each lookup through it re-checks that the record it points at is a
// well-formed record of the id asked for, inside the covered log.
#ifndef RECMAP_STORE_PERSISTED_INDEX_H_
#define RECMAP_STORE_PERSISTED_INDEX_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "offset_index.h"

namespace recmap {

inline constexpr char kIndexMagic[8] = {'R', 'M', 'A', 'P',
                                        'I', 'D', 'X', '\n'};
// Version 2: the covered prefixes need not end at the same moment (records
// past a covered tail may be older than covered ones). Version 1 files
// (every region covered to its tail, at a clean close) are still read.
inline constexpr uint32_t kIndexVersion = 2;
inline constexpr uint32_t kIndexOldestVersion = 1;
inline constexpr uint64_t kIndexHeaderSize = 64;
inline constexpr uint64_t kIndexRegionEntrySize = 48;
inline constexpr uint64_t kIndexSlotSize = 16;
inline constexpr uint64_t kIndexTrailerSize = 16;

// The path of the index file of the store at `store_path`.
std::string IndexPathFor(const std::string& store_path);

// What the index knows about one covered region.
struct IndexedRegion {
  uint64_t epoch = 0;
  uint64_t tail = 0;  // region-relative end of the covered records
  uint64_t records = 0;
  uint64_t fill = 0;
  uint64_t payload_bytes = 0;
};

class PersistedIndex {
 public:
  ~PersistedIndex();
  PersistedIndex(const PersistedIndex&) = delete;
  PersistedIndex& operator=(const PersistedIndex&) = delete;

  // Maps and validates the file at `path` (size, header, checksum) against
  // the store's `uuid` and `region_size`. Errors: NotFound (no file),
  // DataLoss (damaged, truncated, another store's, another version).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PersistedIndex>> Load(
      const std::string& path, const std::array<uint8_t, 16>& uuid,
      uint64_t region_size);

  // Reads only the header and the region entries of the file at `path`,
  // checking all Load checks but the checksum (which needs the whole file):
  // what the file covers, cheaply. Errors as Load.
  [[nodiscard]] static absl::StatusOr<std::vector<IndexedRegion>> ReadCoverage(
      const std::string& path, const std::array<uint8_t, 16>& uuid,
      uint64_t region_size);

  // Writes an index of `entries` (id, location) pairs, one per id, covering
  // `regions` to `path` atomically (a temporary file, synced, renamed,
  // directory synced). Errors: those of the file operations.
  [[nodiscard]] static absl::Status Write(
      const std::string& path, const std::array<uint8_t, 16>& uuid,
      uint64_t region_size, uint64_t max_sequence,
      const std::vector<IndexedRegion>& regions,
      const std::vector<OffsetIndex::Slot>& entries);

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

 private:
  PersistedIndex() = default;
  void ReadSlot(uint64_t i, uint64_t* id, uint64_t* loc) const;

  const char* map_ = nullptr;
  uint64_t size_ = 0;
  const char* slots_base_ = nullptr;
  uint64_t slots_ = 0;
  uint64_t entries_ = 0;
  uint64_t max_sequence_ = 0;
  std::vector<IndexedRegion> regions_;
};

// Builds an index file: a temporary file "<path>.tmp" is allocated (a full
// disk fails Create), the table is filled id by id in anonymous memory
// (never a writable mapping of the file: a store into an unallocated page
// of it is a SIGBUS), then checksummed, written with pwrite, synced and
// renamed over `path` (PersistedIndex::Write is Create + Put per entry +
// Finish). The temporary file is removed on every failure. Not
// thread-safe.
class PersistedIndexBuilder {
 public:
  // A table of `slots` slots (at least one more than the ids to be put)
  // after `region_count` region entries. Errors: those of creating and
  // sizing the temporary file.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<PersistedIndexBuilder>>
  Create(const std::string& path, const std::array<uint8_t, 16>& uuid,
         uint64_t region_size, uint32_t region_count, uint64_t slots);
  // Removes the temporary file unless Finish succeeded.
  ~PersistedIndexBuilder();
  PersistedIndexBuilder(const PersistedIndexBuilder&) = delete;
  PersistedIndexBuilder& operator=(const PersistedIndexBuilder&) = delete;

  // The location stored for `id`, or 0.
  uint64_t Find(uint64_t id) const;
  // Stores `location` (non-zero) for `id`, replacing any earlier one.
  // False, storing nothing, if `id` is new and the table has only one
  // empty slot left (a probe must always end at an empty slot).
  bool Put(uint64_t id, uint64_t location);
  uint64_t entries() const { return entries_; }

  // Writes the header (`regions` must hold region_count entries), the
  // checksum, syncs the file, renames it over `path` and syncs the
  // directory. Errors: InvalidArgument (region count), those of the file
  // operations; the builder is spent either way.
  [[nodiscard]] absl::Status Finish(uint64_t max_sequence,
                                    const std::vector<IndexedRegion>& regions);

 private:
  PersistedIndexBuilder() = default;
  // The slot holding `id`, or the empty slot ending its probe.
  uint64_t Probe(uint64_t id) const;
  void Abandon();

  std::string path_, tmp_;
  std::array<uint8_t, 16> uuid_{};
  uint64_t region_size_ = 0;
  uint32_t region_count_ = 0;
  int fd_ = -1;
  char* map_ = nullptr;
  uint64_t size_ = 0;
  char* table_ = nullptr;
  uint64_t slots_ = 0;
  uint64_t entries_ = 0;
};

}  // namespace recmap

#endif  // RECMAP_STORE_PERSISTED_INDEX_H_
