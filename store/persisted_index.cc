#include "persisted_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_ops.h"

namespace recmap {
namespace {

absl::Status Damaged(const std::string& path, const std::string& why) {
  return absl::DataLossError(absl::StrCat(path, ": index file ", why));
}

uint64_t PageSum(const char* map, uint64_t page) {
  return XXH3_64bits_withSeed(map + page * kIndexPageSize, kIndexPageSize,
                              kIndexChecksumSeed ^ page);
}

uint64_t HeaderSum(const char* map) {
  return XXH3_64bits_withSeed(map, kIxHeaderChecksum, kIndexChecksumSeed);
}

// What a validated header says.
struct Header {
  uint32_t state = 0;
  uint64_t slots = 0;
  uint64_t entries = 0;
  uint64_t max_sequence = 0;
  uint32_t region_capacity = 0;
  uint32_t region_count = 0;
  IndexLayout layout;
};

// The header names this format, this store and this boot, and is whole.
absl::Status CheckIdentity(const std::string& path, const char* p,
                           uint64_t size, const std::array<uint8_t, 16>& uuid,
                           uint64_t region_size) {
  if (size < kIndexPageSize)
    return Damaged(path, absl::StrCat("of ", size, " bytes is truncated"));
  if (std::memcmp(p + kIxMagic, kIndexMagic, 8) != 0)
    return Damaged(path, "has a wrong magic");
  if (HeaderSum(p) != DecodeFixed64(p + kIxHeaderChecksum))
    return Damaged(path, "header checksum mismatch");
  if (const uint32_t v = DecodeFixed32(p + kIxVersion); v != kIndexVersion)
    return Damaged(path, absl::StrCat("has version ", v, " (this build reads ",
                                      kIndexVersion, ")"));
  if (std::memcmp(p + kIxUuid, uuid.data(), 16) != 0)
    return Damaged(path, "belongs to another store file");
  if (DecodeFixed64(p + kIxRegionSize) != region_size)
    return Damaged(path, "has another region size");
  const std::array<uint8_t, 16> boot = CurrentBootId();
  if (boot == std::array<uint8_t, 16>{} ||
      std::memcmp(p + kIxBootId, boot.data(), 16) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": index file was written before the machine last booted"));
  }
  return absl::OkStatus();
}

// The header's counts, bounded by the file's `size` before they are
// multiplied, and the layout they give, which must be `size` bytes.
absl::Status ReadCounts(const std::string& path, const char* p, uint64_t size,
                        Header* h) {
  h->state = DecodeFixed32(p + kIxState);
  h->slots = DecodeFixed64(p + kIxSlots);
  h->entries = DecodeFixed64(p + kIxEntries);
  h->max_sequence = DecodeFixed64(p + kIxMaxSequence);
  h->region_capacity = DecodeFixed32(p + kIxRegionCapacity);
  h->region_count = DecodeFixed32(p + kIxRegionCount);
  if (h->slots > size / kIndexSlotSize || h->slots == 0 ||
      h->region_capacity > size / kIndexRegionEntrySize ||
      h->region_count > h->region_capacity || h->entries >= h->slots ||
      (h->state & ~kIndexStateUpdating) != 0)
    return Damaged(path, "header does not match its size");
  h->layout = IndexLayout::For(h->region_capacity, h->slots);
  if (h->layout.file_size() != size)
    return Damaged(path, "header does not match its size");
  return absl::OkStatus();
}

// The checksum of the page sums, and each page's sum.
absl::Status CheckPageSums(const std::string& path, const char* p,
                           const Header& h) {
  const char* sums = p + h.layout.sum_offset();
  if (XXH3_64bits_withSeed(sums, h.layout.sum_pages * kIndexPageSize,
                           kIndexChecksumSeed) !=
      DecodeFixed64(p + kIxSumsChecksum))
    return Damaged(path, "page sums checksum mismatch");
  for (uint64_t k = 0; k < h.layout.summed_pages(); ++k) {
    if (PageSum(p, 1 + k) != DecodeFixed64(sums + 8 * k)) {
      return Damaged(path,
                     absl::StrCat("page ", 1 + k, " checksum mismatch (offset ",
                                  (1 + k) * kIndexPageSize, ")"));
    }
  }
  return absl::OkStatus();
}

// The region entries, each with a tail inside a region.
absl::Status ReadRegions(const std::string& path, const char* p,
                         uint64_t region_size, const Header& h,
                         std::vector<IndexedRegion>* regions) {
  regions->resize(h.region_count);
  const char* r = p + h.layout.region_offset();
  for (uint32_t i = 0; i < h.region_count; ++i, r += kIndexRegionEntrySize) {
    IndexedRegion& g = (*regions)[i];
    g.epoch = DecodeFixed64(r + kIxRegionEpoch);
    g.tail = DecodeFixed64(r + kIxRegionTail);
    g.records = DecodeFixed64(r + kIxRegionRecords);
    g.fill = DecodeFixed64(r + kIxRegionFill);
    g.payload_bytes = DecodeFixed64(r + kIxRegionPayloadBytes);
    if (g.tail % 8 != 0 || g.tail > region_size)
      return Damaged(path, absl::StrCat("region ", i, " has a bad tail"));
  }
  return absl::OkStatus();
}

// Every check of the trust rules that the file alone can answer
// (persisted_index.h); the page sums are not checked if the file was left
// updating.
absl::Status Validate(const std::string& path, const char* p, uint64_t size,
                      const std::array<uint8_t, 16>& uuid, uint64_t region_size,
                      Header* h, std::vector<IndexedRegion>* regions) {
  if (absl::Status s = CheckIdentity(path, p, size, uuid, region_size); !s.ok())
    return s;
  if (absl::Status s = ReadCounts(path, p, size, h); !s.ok()) return s;
  if ((h->state & kIndexStateUpdating) == 0) {
    if (absl::Status s = CheckPageSums(path, p, *h); !s.ok()) return s;
  }
  return ReadRegions(path, p, region_size, *h, regions);
}

// Closes a descriptor when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() { io::Close(fd); }
};

// Opens `path`; NotFound if there is none.
absl::Status OpenIndexFile(const std::string& path, int flags, int* fd) {
  absl::Status s = io::Open(path, flags | O_CLOEXEC, 0644, fd);
  if (!s.ok() && errno == ENOENT)
    return absl::NotFoundError(absl::StrCat(path, ": no index file"));
  return s;
}

absl::Status MapFile(const std::string& path, int fd, bool writable, char** map,
                     uint64_t* size) {
  struct stat st;
  if (absl::Status s = io::Fstat(fd, path, &st); !s.ok()) return s;
  if (!S_ISREG(st.st_mode)) return Damaged(path, "is not a regular file");
  *size = static_cast<uint64_t>(st.st_size);
  if (*size < kIndexPageSize)
    return Damaged(path, absl::StrCat("of ", *size, " bytes is truncated"));
  void* m = nullptr;
  if (absl::Status s =
          io::Map(nullptr, *size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
                  MAP_SHARED | MAP_POPULATE, fd, 0, path, &m);
      !s.ok())
    return s;
  *map = static_cast<char*>(m);
  return absl::OkStatus();
}

}  // namespace

std::string IndexPathFor(const std::string& store_path) {
  return store_path + ".idx";
}

std::array<uint8_t, 16> CurrentBootId() {
  static const std::array<uint8_t, 16> id = [] {
    std::array<uint8_t, 16> out{};
    std::ifstream in("/proc/sys/kernel/random/boot_id");
    std::string s;
    if (!std::getline(in, s)) return out;
    size_t k = 0;
    for (size_t i = 0; i + 1 < s.size() && k < 32;) {
      if (s[i] == '-') {
        ++i;
        continue;
      }
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      const int hi = hex(s[i]), lo = hex(s[i + 1]);
      if (hi < 0 || lo < 0) return std::array<uint8_t, 16>{};
      out[k / 2] = static_cast<uint8_t>(hi << 4 | lo);
      k += 2;
      i += 2;
    }
    return k == 32 ? out : std::array<uint8_t, 16>{};
  }();
  return id;
}

// ---- PersistedIndex

PersistedIndex::~PersistedIndex() {
  if (map_ != nullptr) io::Unmap(const_cast<char*>(map_), size_);
}

uint64_t PersistedIndex::Find(uint64_t id) const {
  if (slots_ == 0) return 0;
  uint64_t i = IndexHome(IndexHash(id), slots_);
  // At most every slot: a damaged-but-checksummed table cannot loop.
  for (uint64_t n = 0; n < slots_; ++n) {
    uint64_t sid, loc;
    ReadSlot(i, &sid, &loc);
    if (loc == 0) return 0;
    if (sid == id) return loc;
    if (++i == slots_) i = 0;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<PersistedIndex>> PersistedIndex::Load(
    const std::string& path, const std::array<uint8_t, 16>& uuid,
    uint64_t region_size) {
  int fd = -1;
  if (absl::Status s = OpenIndexFile(path, O_RDONLY, &fd); !s.ok()) return s;
  char* m = nullptr;
  uint64_t size = 0;
  absl::Status s = MapFile(path, fd, false, &m, &size);
  io::Close(fd);
  if (!s.ok()) return s;
  std::unique_ptr<PersistedIndex> ix(new PersistedIndex());
  ix->map_ = m;
  ix->size_ = size;
  Header h;
  if (absl::Status v =
          Validate(path, m, size, uuid, region_size, &h, &ix->regions_);
      !v.ok())
    return v;
  ix->slots_ = h.slots;
  ix->entries_ = h.entries;
  ix->max_sequence_ = h.max_sequence;
  ix->was_updating_ = (h.state & kIndexStateUpdating) != 0;
  ix->slots_base_ = m + h.layout.slot_offset();
  return ix;
}

// ---- PersistedIndexWriter

PersistedIndexWriter::~PersistedIndexWriter() {
  if (map_ != nullptr) io::Unmap(map_, size_);
}

std::unique_ptr<PersistedIndexWriter> PersistedIndexWriter::New(
    const std::string& path, const std::array<uint8_t, 16>& uuid,
    uint64_t region_size) {
  std::unique_ptr<PersistedIndexWriter> w(new PersistedIndexWriter());
  w->path_ = path;
  w->uuid_ = uuid;
  w->region_size_ = region_size;
  return w;
}

absl::Status PersistedIndexWriter::Map(int fd, uint64_t size,
                                       const std::string& file) {
  void* m = nullptr;
  if (absl::Status s = io::Map(nullptr, size, PROT_READ | PROT_WRITE,
                               MAP_SHARED, fd, 0, file, &m);
      !s.ok())
    return s;
  return Adopt(fd, static_cast<char*>(m), size, file);
}

absl::Status PersistedIndexWriter::Adopt(int fd, char* map, uint64_t size,
                                         const std::string& file) {
  if (map_ != nullptr && map_ != map) io::Unmap(map_, size_);
  map_ = map;
  size_ = size;
  struct stat st;
  if (absl::Status s = io::Fstat(fd, file, &st); !s.ok()) return s;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  const IndexLayout l = IndexLayout::For(region_capacity_, slots_);
  slots_base_ = map_ + l.slot_offset();
  dirty_.assign((size / kIndexPageSize + 63) / 64, 0);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PersistedIndexWriter>>
PersistedIndexWriter::Open(const std::string& path,
                           const std::array<uint8_t, 16>& uuid,
                           uint64_t region_size) {
  int fd = -1;
  if (absl::Status s = OpenIndexFile(path, O_RDWR, &fd); !s.ok()) return s;
  FdCloser closer{fd};
  std::unique_ptr<PersistedIndexWriter> w = New(path, uuid, region_size);
  char* m = nullptr;
  uint64_t size = 0;
  if (absl::Status s = MapFile(path, fd, true, &m, &size); !s.ok()) return s;
  w->map_ = m;
  w->size_ = size;
  Header h;
  if (absl::Status v =
          Validate(path, m, size, uuid, region_size, &h, &w->regions_);
      !v.ok())
    return v;
  w->slots_ = h.slots;
  w->entries_ = h.entries;
  w->max_sequence_ = h.max_sequence;
  w->region_capacity_ = h.region_capacity;
  // The mapping just validated is the one written through.
  if (absl::Status s = w->Adopt(fd, m, size, path); !s.ok()) return s;
  if ((h.state & kIndexStateUpdating) != 0) {
    // Left by a batch cut short: its pages are what it wrote, their sums
    // and the header's entry count (written at the end of a batch) may not
    // be.
    w->entries_ = 0;
    for (uint64_t i = 0; i < w->slots_; ++i)
      w->entries_ += LoadLocation(w->slots_base_ + i * kIndexSlotSize) != 0;
    w->SumAllPages();
    w->WriteHeader(0, 0);
  }
  return w;
}

absl::StatusOr<std::unique_ptr<PersistedIndexWriter>>
PersistedIndexWriter::Create(const std::string& path,
                             const std::array<uint8_t, 16>& uuid,
                             uint64_t region_size, uint64_t slots,
                             uint32_t region_capacity) {
  slots = std::max<uint64_t>(slots, 64);
  const IndexLayout l = IndexLayout::For(region_capacity, slots);
  const std::string tmp = path + ".tmp";
  int fd = -1;
  if (absl::Status s =
          io::Open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, &fd);
      !s.ok())
    return s;
  FdCloser closer{fd};
  std::unique_ptr<PersistedIndexWriter> w = New(path, uuid, region_size);
  w->slots_ = slots;
  w->region_capacity_ = region_capacity;
  // Every block allocated before a byte is stored through the mapping.
  absl::Status s = io::Allocate(fd, 0, l.file_size(), tmp);
  if (s.ok()) s = w->Map(fd, l.file_size(), tmp);
  if (s.ok()) {
    w->SumAllPages();
    w->WriteHeader(0, 0);
    s = io::Rename(tmp, path);
  }
  if (!s.ok()) {
    (void)io::Unlink(tmp);  // best effort: an open removes one left behind
    return s;
  }
  return w;
}

bool PersistedIndexWriter::IsCurrent() const {
  struct stat st;
  return io::Stat(path_, &st).ok() &&
         static_cast<uint64_t>(st.st_dev) == dev_ &&
         static_cast<uint64_t>(st.st_ino) == ino_;
}

absl::Status PersistedIndexWriter::Grow(uint64_t slots,
                                        uint32_t region_capacity,
                                        const std::atomic<bool>* stop) {
  absl::StatusOr<std::unique_ptr<PersistedIndexWriter>> n =
      Create(path_ + ".grow", uuid_, region_size_, slots, region_capacity);
  if (!n.ok()) return n.status();
  PersistedIndexWriter& g = **n;
  g.BeginUpdate(0);
  for (uint64_t i = 0; i < slots_; ++i) {
    if (stop != nullptr && i % 65536 == 0 &&
        stop->load(std::memory_order_acquire)) {
      (void)io::Unlink(g.path_);
      return absl::CancelledError(absl::StrCat(path_, ": growth stopped"));
    }
    const char* p = slots_base_ + i * kIndexSlotSize;
    const uint64_t loc = LoadLocation(p);
    if (loc != 0 && !g.Upsert(*reinterpret_cast<const uint64_t*>(p), loc,
                              [](uint64_t) { return false; })) {
      (void)io::Unlink(g.path_);
      return absl::InternalError(
          absl::StrCat(path_, ": more entries than the grown table holds"));
    }
  }
  for (uint32_t i = 0; i < regions_.size(); ++i) g.SetRegion(i, regions_[i]);
  g.RaiseMaxSequence(max_sequence_);
  g.EndUpdate();
  // The grown file takes this one's name; readers that mapped this one
  // keep a table that is no longer extended, which they never rely on.
  if (absl::Status s = io::Rename(g.path_, path_); !s.ok()) {
    (void)io::Unlink(g.path_);
    return s;
  }
  std::swap(map_, g.map_);
  std::swap(size_, g.size_);
  slots_base_ = g.slots_base_;
  slots_ = g.slots_;
  entries_ = g.entries_;
  region_capacity_ = g.region_capacity_;
  dev_ = g.dev_;
  ino_ = g.ino_;
  dirty_ = std::move(g.dirty_);
  return absl::OkStatus();
}

void PersistedIndexWriter::BeginUpdate(uint32_t region) {
  WriteHeader(kIndexStateUpdating, region);
}

void PersistedIndexWriter::SetRegion(uint32_t i, const IndexedRegion& g) {
  while (regions_.size() <= i) {
    IndexedRegion none;
    none.tail = 0;
    regions_.push_back(none);
  }
  regions_[i] = g;
  char* r = map_ + IndexLayout::For(region_capacity_, slots_).region_offset() +
            uint64_t{i} * kIndexRegionEntrySize;
  EncodeFixed64(r + kIxRegionEpoch, g.epoch);
  EncodeFixed64(r + kIxRegionTail, g.tail);
  EncodeFixed64(r + kIxRegionRecords, g.records);
  EncodeFixed64(r + kIxRegionFill, g.fill);
  EncodeFixed64(r + kIxRegionPayloadBytes, g.payload_bytes);
  MarkDirty(r);
  MarkDirty(r + kIndexRegionEntrySize - 1);  // an entry may straddle pages
}

void PersistedIndexWriter::EndUpdate() {
  const IndexLayout l = IndexLayout::For(region_capacity_, slots_);
  char* sums = map_ + l.sum_offset();
  for (uint64_t w = 0; w < dirty_.size(); ++w) {
    for (uint64_t bits = dirty_[w]; bits != 0; bits &= bits - 1) {
      const uint64_t page =
          w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
      if (page >= 1 && page <= l.summed_pages())
        EncodeFixed64(sums + 8 * (page - 1), PageSum(map_, page));
    }
    dirty_[w] = 0;
  }
  WriteHeader(0, 0);
}

void PersistedIndexWriter::SumAllPages() {
  const IndexLayout l = IndexLayout::For(region_capacity_, slots_);
  char* sums = map_ + l.sum_offset();
  for (uint64_t k = 0; k < l.summed_pages(); ++k)
    EncodeFixed64(sums + 8 * k, PageSum(map_, 1 + k));
  std::fill(dirty_.begin(), dirty_.end(), 0);
}

void PersistedIndexWriter::WriteHeader(uint32_t state,
                                       uint32_t updating_region) {
  const IndexLayout l = IndexLayout::For(region_capacity_, slots_);
  char* h = map_;
  std::memcpy(h + kIxMagic, kIndexMagic, 8);
  EncodeFixed32(h + kIxVersion, kIndexVersion);
  EncodeFixed32(h + kIxState, state);
  std::memcpy(h + kIxUuid, uuid_.data(), 16);
  EncodeFixed64(h + kIxRegionSize, region_size_);
  EncodeFixed64(h + kIxSlots, slots_);
  EncodeFixed64(h + kIxEntries, entries_);
  EncodeFixed64(h + kIxMaxSequence, max_sequence_);
  const std::array<uint8_t, 16> boot = CurrentBootId();
  std::memcpy(h + kIxBootId, boot.data(), 16);
  EncodeFixed32(h + kIxRegionCapacity, region_capacity_);
  EncodeFixed32(h + kIxRegionCount, static_cast<uint32_t>(regions_.size()));
  EncodeFixed32(h + kIxUpdatingRegion, updating_region);
  if (state == 0) {
    EncodeFixed64(
        h + kIxSumsChecksum,
        XXH3_64bits_withSeed(map_ + l.sum_offset(),
                             l.sum_pages * kIndexPageSize, kIndexChecksumSeed));
  }
  // The header's own sum last: a header half written does not validate.
  std::atomic_thread_fence(std::memory_order_release);
  EncodeFixed64(h + kIxHeaderChecksum, HeaderSum(h));
}

}  // namespace recmap
