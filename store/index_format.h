// The layout of the index file "<store>.idx", byte for byte
// (docs/FORMAT.md "Index file"). Little-endian fixed-width fields.
//
//   page 0            header (fields below), its XXH3 in the last 8 bytes
//   region pages      region_capacity entries of kIndexRegionEntrySize
//   slot pages        `slots` slots of kIndexSlotSize (id u64, location u64
//                     packed as location.h says; 0: empty), the table of
//                     offset_index.h: IndexHash, IndexHome below, linear
//                     probing with wrap-around
//   sum pages         one XXH3-64 (seed: the page number) per region page
//                     and slot page, in page order
//
// Every area starts on a page boundary; the file is allocated in full when
// it is created, and only ever written in place (through a shared mapping)
// by the one background index writer holding kLockIndex. The location word
// of a slot is the one word of the file read in place (std::atomic_ref,
// persisted_index.h): the writer stores it while readers of the same
// mapping look it up, so it is the same case as format.h's live words.
#ifndef RECMAP_STORE_INDEX_FORMAT_H_
#define RECMAP_STORE_INDEX_FORMAT_H_

#include <cstdint>

namespace recmap {

inline constexpr char kIndexMagic[8] = {'R', 'M', 'A', 'P',
                                        'I', 'D', 'X', '\n'};
// Version 3: updated in place, trusted within the boot that wrote it.
// Versions 1 and 2 (rewritten whole, trusted across reboots) are no longer
// read: such a file is replaced by the background index writer.
inline constexpr uint32_t kIndexVersion = 3;
inline constexpr uint64_t kIndexPageSize = 4096;
inline constexpr uint64_t kIndexRegionEntrySize = 48;
inline constexpr uint64_t kIndexSlotSize = 16;

// Header fields (offsets in page 0).
inline constexpr uint64_t kIxMagic = 0;              // 8 bytes
inline constexpr uint64_t kIxVersion = 8;            // u32
inline constexpr uint64_t kIxState = 12;             // u32, kIndexState*
inline constexpr uint64_t kIxUuid = 16;              // the store's, 16 bytes
inline constexpr uint64_t kIxRegionSize = 32;        // u64
inline constexpr uint64_t kIxSlots = 40;             // u64
inline constexpr uint64_t kIxEntries = 48;           // u64
inline constexpr uint64_t kIxMaxSequence = 56;       // u64
inline constexpr uint64_t kIxBootId = 64;            // 16 bytes
inline constexpr uint64_t kIxRegionCapacity = 80;    // u32
inline constexpr uint64_t kIxRegionCount = 84;       // u32
inline constexpr uint64_t kIxUpdatingRegion = 88;    // u32
inline constexpr uint64_t kIxSumsChecksum = 96;      // u64: XXH3 of sum pages
inline constexpr uint64_t kIxHeaderChecksum = 4088;  // u64: XXH3 of [0, 4088)

// kIxState bits. kIndexStateUpdating: a batch of updates was in progress
// when the header was last written; the page sums may not match the pages
// (see persisted_index.h for what an opener does then).
inline constexpr uint32_t kIndexStateUpdating = 1;

// Region entry fields (offsets within an entry).
inline constexpr uint64_t kIxRegionEpoch = 0;
inline constexpr uint64_t kIxRegionTail = 8;  // end of the covered records
inline constexpr uint64_t kIxRegionRecords = 16;
inline constexpr uint64_t kIxRegionFill = 24;
inline constexpr uint64_t kIxRegionPayloadBytes = 32;
// 40..47 reserved, zero.

inline constexpr uint64_t kIndexChecksumSeed =
    0x726d6170696478ULL;  // "rmapidx"

// The hash of an id that places it in the slot table, fixed by the format (a
// 64-bit finalizer, MurmurHash3's fmix64).
inline uint64_t IndexHash(uint64_t id) {
  id ^= id >> 33;
  id *= 0xff51afd7ed558ccdULL;
  id ^= id >> 33;
  id *= 0xc4ceb9fe1a85ec53ULL;
  id ^= id >> 33;
  return id;
}
// The home slot of `hash` in a table of `slots` slots (Lemire's fastrange).
inline uint64_t IndexHome(uint64_t hash, uint64_t slots) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(hash) * slots) >>
                               64);
}

// The page counts of each area of a file with `region_capacity` region
// entries and `slots` slots.
struct IndexLayout {
  uint64_t region_pages = 0;
  uint64_t slot_pages = 0;
  uint64_t sum_pages = 0;
  static IndexLayout For(uint64_t region_capacity, uint64_t slots) {
    IndexLayout l;
    l.region_pages =
        (region_capacity * kIndexRegionEntrySize + kIndexPageSize - 1) /
        kIndexPageSize;
    l.slot_pages =
        (slots * kIndexSlotSize + kIndexPageSize - 1) / kIndexPageSize;
    l.sum_pages = ((l.region_pages + l.slot_pages) * 8 + kIndexPageSize - 1) /
                  kIndexPageSize;
    return l;
  }
  // Pages covered by sums: region pages then slot pages, from page 1.
  uint64_t summed_pages() const { return region_pages + slot_pages; }
  uint64_t region_offset() const { return kIndexPageSize; }
  uint64_t slot_offset() const { return kIndexPageSize * (1 + region_pages); }
  uint64_t sum_offset() const {
    return kIndexPageSize * (1 + region_pages + slot_pages);
  }
  uint64_t file_size() const {
    return kIndexPageSize * (1 + region_pages + slot_pages + sum_pages);
  }
};

}  // namespace recmap

#endif  // RECMAP_STORE_INDEX_FORMAT_H_
