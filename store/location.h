// A record's location packed into one 64-bit word: the value the offset
// index (offset_index.h) and the persisted index file's slots
// (index_format.h) hold for an id.
//
//   packed = region << kLocationRegionShift | offset >> kLocationAlignBits
//
// `offset` is region-relative and 8-aligned (every record is), so its low
// three bits are dropped: 40 bits of offset/8 address 8 TiB inside a region,
// far past kMaxRegionSize, and the remaining 24 bits number the regions. A
// record never starts at region offset 0 (the region header is there), so
// the packed value 0 means "no location" (an empty slot). This layout is
// part of the format: the index file stores it.
#ifndef RECMAP_STORE_LOCATION_H_
#define RECMAP_STORE_LOCATION_H_

#include <cstdint>

#include "format.h"

namespace recmap {

inline constexpr int kLocationRegionShift = 40;
inline constexpr int kLocationAlignBits = 3;
inline constexpr uint64_t kLocationOffsetMask =
    (uint64_t{1} << kLocationRegionShift) - 1;

// An unpacked location. Trivial and inline: the lookup and index paths
// unpack one per record.
struct Location {
  uint32_t region = 0;
  uint64_t offset = 0;  // region-relative, 8-aligned

  // The packed word (0 never results from a real record: its offset is at
  // least kRegionDataOffset).
  static constexpr uint64_t Pack(uint32_t region, uint64_t offset) {
    return uint64_t{region} << kLocationRegionShift |
           offset >> kLocationAlignBits;
  }
  static constexpr Location Unpack(uint64_t packed) {
    return Location{static_cast<uint32_t>(packed >> kLocationRegionShift),
                    (packed & kLocationOffsetMask) << kLocationAlignBits};
  }
  // Just the region of a packed word (grouping by region without the
  // offset).
  static constexpr uint32_t RegionOf(uint64_t packed) {
    return static_cast<uint32_t>(packed >> kLocationRegionShift);
  }
  constexpr uint64_t packed() const { return Pack(region, offset); }

  // Resolving: the file offset of the record in a store whose regions are
  // `region_size` bytes (FORMAT.md: regions follow the first two pages).
  constexpr uint64_t FileOffset(uint64_t region_size) const {
    return kFirstRegionOffset + uint64_t{region} * region_size + offset;
  }
  // The record's first byte in a mapping whose region `region` starts at
  // `region_base`.
  const char* In(const char* region_base) const { return region_base + offset; }

  friend constexpr bool operator==(const Location&, const Location&) = default;
};

}  // namespace recmap

#endif  // RECMAP_STORE_LOCATION_H_
