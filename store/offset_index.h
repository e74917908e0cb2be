// The in-memory offset index: id -> packed record location (location.h),
// an open-addressing hash table with linear probing over 16-byte slots.
// Tighter than a general hash map: the table grows by half (not double)
// at 80% load, so it holds 24 to 30 bytes per id, and no control bytes.
// A location of 0 marks an empty slot (no record lives at region offset 0).
//
// The same slot layout and hash (IndexHash, IndexHome: index_format.h) are
// the table section of the persisted index file (docs/FORMAT.md "Index
// file"): changing either changes the format.
#ifndef RECMAP_STORE_OFFSET_INDEX_H_
#define RECMAP_STORE_OFFSET_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "index_format.h"

namespace recmap {

class OffsetIndex {
 public:
  struct Slot {
    uint64_t id;
    uint64_t location;  // 0: empty
  };
  static_assert(sizeof(Slot) == kIndexSlotSize);

  OffsetIndex() = default;
  OffsetIndex(const OffsetIndex&) = delete;
  OffsetIndex& operator=(const OffsetIndex&) = delete;

  // The location stored for `id`, or 0.
  uint64_t Find(uint64_t id) const;
  // Starts loading the home slot of `id` into the cache (batched lookups
  // overlap their misses this way).
  void Prefetch(uint64_t id) const {
    if (slots_ != 0)
      __builtin_prefetch(&table_[IndexHome(IndexHash(id), slots_)]);
  }
  // The location word for `id`, inserting a slot holding 0 if absent (the
  // caller then stores a non-zero location). Invalidated by the next
  // FindOrInsert.
  uint64_t* FindOrInsert(uint64_t id);

  size_t size() const { return size_; }
  size_t slots() const { return slots_; }
  size_t MemoryBytes() const { return slots_ * sizeof(Slot); }

  // Calls fn(id, location) for every id, in slot order.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (size_t i = 0; i < slots_; ++i)
      if (table_[i].location != 0) fn(table_[i].id, table_[i].location);
  }

  // Slots for a table of `n` ids at the load the persisted file uses.
  static size_t SlotsFor(size_t n);

 private:
  void Rehash(size_t slots);

  // Tables of 2 MiB and more are anonymous mappings advised to use huge
  // pages: lookups are random, and with 4 KiB pages nearly every one would
  // also miss the TLB.
  struct TableDeleter {
    TableDeleter() : bytes(0) {}
    explicit TableDeleter(size_t b) : bytes(b) {}
    void operator()(Slot* p) const;
    size_t bytes;
  };
  static std::unique_ptr<Slot[], TableDeleter> NewTable(size_t slots);

  std::unique_ptr<Slot[], TableDeleter> table_;
  size_t slots_ = 0;
  size_t size_ = 0;
  size_t grow_at_ = 0;  // size at which the table grows
};

}  // namespace recmap

#endif  // RECMAP_STORE_OFFSET_INDEX_H_
