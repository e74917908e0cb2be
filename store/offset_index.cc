#include "offset_index.h"

#include <sys/mman.h>

#include <algorithm>
#include <new>

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

size_t OffsetIndex::SlotsFor(size_t n) {
  // At most 80% full.
  return std::max<size_t>(64, n + n / 4 + 1);
}

void OffsetIndex::Rehash(size_t slots) {
  std::unique_ptr<Slot[], TableDeleter> old = std::move(table_);
  const size_t old_slots = slots_;
  table_ = NewTable(slots);
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

constexpr size_t kHugeTableBytes = size_t{2} << 20;

std::unique_ptr<OffsetIndex::Slot[], OffsetIndex::TableDeleter>
OffsetIndex::NewTable(size_t slots) {
  const size_t bytes = slots * sizeof(Slot);
  if (bytes >= kHugeTableBytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      (void)::madvise(p, bytes, MADV_HUGEPAGE);  // a hint; fine if refused
      // Anonymous pages read as zero: every slot starts empty.
      return std::unique_ptr<Slot[], TableDeleter>(static_cast<Slot*>(p),
                                                   TableDeleter{bytes});
    }
  }
  return std::unique_ptr<Slot[], TableDeleter>(new Slot[slots](),
                                               TableDeleter{0});
}

void OffsetIndex::TableDeleter::operator()(Slot* p) const {
  if (p == nullptr) return;
  if (bytes != 0) {
    ::munmap(p, bytes);
  } else {
    delete[] p;
  }
}

}  // namespace recmap
