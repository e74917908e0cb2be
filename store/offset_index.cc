#include "offset_index.h"

#include <algorithm>

namespace recmap {

// Invariant: every id is in the first empty-free run of slots starting at
// its home slot (linear probing, wrapping at the end); nothing is ever
// removed, so lookups stop at the first empty slot.

uint64_t OffsetIndex::Find(uint64_t id) const {
  if (slots_ == 0) return 0;
  size_t i = IndexHome(IndexHash(id), slots_);
  while (true) {
    const Slot& s = table_[i];
    if (s.location == 0) return 0;
    if (s.id == id) return s.location;
    if (++i == slots_) i = 0;
  }
}

uint64_t* OffsetIndex::FindOrInsert(uint64_t id) {
  if (size_ + 1 > grow_at_) {
    Rehash(std::max<size_t>(64, slots_ + slots_ / 2));
  }
  size_t i = IndexHome(IndexHash(id), slots_);
  while (true) {
    Slot& s = table_[i];
    if (s.location == 0) {
      s.id = id;
      ++size_;
      return &s.location;
    }
    if (s.id == id) return &s.location;
    if (++i == slots_) i = 0;
  }
}

void OffsetIndex::Reserve(size_t n) {
  if (n > grow_at_) Rehash(SlotsFor(n));
}

size_t OffsetIndex::SlotsFor(size_t n) {
  // At most 80% full.
  return std::max<size_t>(64, n + n / 4 + 1);
}

void OffsetIndex::Rehash(size_t slots) {
  std::unique_ptr<Slot[]> old = std::move(table_);
  const size_t old_slots = slots_;
  table_.reset(new Slot[slots]());
  slots_ = slots;
  grow_at_ = slots * 4 / 5;
  for (size_t k = 0; k < old_slots; ++k) {
    const Slot& s = old[k];
    if (s.location == 0) continue;
    size_t i = IndexHome(IndexHash(s.id), slots_);
    while (table_[i].location != 0)
      if (++i == slots_) i = 0;
    table_[i] = s;
  }
}

}  // namespace recmap
