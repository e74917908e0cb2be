#include "persisted_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_ops.h"

namespace recmap {
namespace {

// Header field offsets (docs/FORMAT.md "Index file").
constexpr uint64_t kIxMagic = 0;
constexpr uint64_t kIxVersion = 8;
constexpr uint64_t kIxRegionCount = 12;
constexpr uint64_t kIxUuid = 16;
constexpr uint64_t kIxRegionSize = 32;
constexpr uint64_t kIxSlots = 40;
constexpr uint64_t kIxEntries = 48;
constexpr uint64_t kIxMaxSequence = 56;

constexpr uint64_t kChecksumSeed = 0x726d6170696478ULL;  // "rmapidx"

uint64_t FileSize(uint64_t regions, uint64_t slots) {
  return kIndexHeaderSize + regions * kIndexRegionEntrySize +
         slots * kIndexSlotSize + kIndexTrailerSize;
}

uint64_t Checksum(const char* p, uint64_t size) {
  // Everything but the checksum word itself (the trailer's last 8 bytes).
  return XXH3_64bits_withSeed(p, size - 8, kChecksumSeed);
}

absl::Status Damaged(const std::string& path, const std::string& why) {
  return absl::DataLossError(absl::StrCat(path, ": index file ", why));
}

// Opens an index file for reading; NotFound if there is none.
absl::Status OpenIndexFile(const std::string& path, int* fd) {
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd >= 0) return absl::OkStatus();
  if (errno == ENOENT)
    return absl::NotFoundError(absl::StrCat(path, ": no index file"));
  return io::ErrnoStatus(errno, "open", path);
}

// The counts in header `h` of a file of `size` bytes.
struct HeaderCounts {
  uint64_t regions = 0;
  uint64_t slots = 0;
  uint64_t entries = 0;
};

// Magic, version, and counts that match the file's size.
absl::Status CheckHeaderShape(const std::string& path, const char* h,
                              uint64_t size, HeaderCounts* c) {
  if (std::memcmp(h + kIxMagic, kIndexMagic, 8) != 0)
    return Damaged(path, "has a wrong magic");
  if (const uint32_t v = DecodeFixed32(h + kIxVersion);
      v < kIndexOldestVersion || v > kIndexVersion)
    return Damaged(path, absl::StrCat("has version ", v));
  c->regions = DecodeFixed32(h + kIxRegionCount);
  c->slots = DecodeFixed64(h + kIxSlots);
  c->entries = DecodeFixed64(h + kIxEntries);
  // Bound the counts before multiplying: the file size bounds them all.
  if (c->regions > size / kIndexRegionEntrySize ||
      c->slots > size / kIndexSlotSize ||
      FileSize(c->regions, c->slots) != size || c->entries > c->slots ||
      (c->slots != 0 && c->entries == c->slots))
    return Damaged(path, "header does not match its size");
  return absl::OkStatus();
}

// The file names this store and its region size.
absl::Status CheckHeaderOwner(const std::string& path, const char* h,
                              const std::array<uint8_t, 16>& uuid,
                              uint64_t region_size) {
  if (std::memcmp(h + kIxUuid, uuid.data(), 16) != 0)
    return Damaged(path, "belongs to another store file");
  if (DecodeFixed64(h + kIxRegionSize) != region_size)
    return Damaged(path, "has another region size");
  return absl::OkStatus();
}

// Decodes `n` region entries starting at `r`, each tail checked.
absl::Status DecodeRegions(const std::string& path, const char* r, uint64_t n,
                           uint64_t region_size,
                           std::vector<IndexedRegion>* out) {
  out->resize(n);
  for (uint64_t i = 0; i < n; ++i, r += kIndexRegionEntrySize) {
    IndexedRegion& g = (*out)[i];
    g.epoch = DecodeFixed64(r);
    g.tail = DecodeFixed64(r + 8);
    g.records = DecodeFixed64(r + 16);
    g.fill = DecodeFixed64(r + 24);
    g.payload_bytes = DecodeFixed64(r + 32);
    if (g.tail % 8 != 0 || g.tail > region_size)
      return Damaged(path, absl::StrCat("region ", i, " has a bad tail"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string IndexPathFor(const std::string& store_path) {
  return store_path + ".idx";
}

PersistedIndex::~PersistedIndex() {
  if (map_ != nullptr) ::munmap(const_cast<char*>(map_), size_);
}

void PersistedIndex::ReadSlot(uint64_t i, uint64_t* id, uint64_t* loc) const {
  const char* p = slots_base_ + i * kIndexSlotSize;
  *id = DecodeFixed64(p);
  *loc = DecodeFixed64(p + 8);
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
  if (absl::Status s = OpenIndexFile(path, &fd); !s.ok()) return s;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return io::ErrnoStatus(e, "fstat", path);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (!S_ISREG(st.st_mode) || size < kIndexHeaderSize + kIndexTrailerSize) {
    ::close(fd);
    return Damaged(path, absl::StrCat("of ", size, " bytes is truncated"));
  }
  // Mapped, not copied: open after a clean close stays a map and a
  // checksum pass. A copy into huge-page anonymous memory was tried: it
  // tripled the open of 10M records (60 -> 186 ms, close to the 200 ms
  // target) for no gain in Get that this machine could tell apart from
  // noise.
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) return io::ErrnoStatus(errno, "mmap", path);
  std::unique_ptr<PersistedIndex> ix(new PersistedIndex());
  ix->map_ = static_cast<const char*>(m);
  ix->size_ = size;
  const char* p = ix->map_;
  HeaderCounts c;
  if (absl::Status s = CheckHeaderShape(path, p, size, &c); !s.ok()) return s;
  if (Checksum(p, size) != DecodeFixed64(p + size - 8))
    return Damaged(path, "checksum mismatch");
  if (absl::Status s = CheckHeaderOwner(path, p, uuid, region_size); !s.ok())
    return s;
  ix->slots_ = c.slots;
  ix->entries_ = c.entries;
  ix->max_sequence_ = DecodeFixed64(p + kIxMaxSequence);
  if (absl::Status s = DecodeRegions(path, p + kIndexHeaderSize, c.regions,
                                     region_size, &ix->regions_);
      !s.ok())
    return s;
  ix->slots_base_ = p + kIndexHeaderSize + c.regions * kIndexRegionEntrySize;
  return ix;
}

absl::StatusOr<std::vector<IndexedRegion>> PersistedIndex::ReadCoverage(
    const std::string& path, const std::array<uint8_t, 16>& uuid,
    uint64_t region_size) {
  int fd = -1;
  if (absl::Status s = OpenIndexFile(path, &fd); !s.ok()) return s;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return io::ErrnoStatus(errno, "fstat", path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  char h[kIndexHeaderSize];
  if (!S_ISREG(st.st_mode) || size < kIndexHeaderSize + kIndexTrailerSize ||
      ::pread(fd, h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h)))
    return Damaged(path, absl::StrCat("of ", size, " bytes is truncated"));
  HeaderCounts c;
  if (absl::Status s = CheckHeaderShape(path, h, size, &c); !s.ok()) return s;
  if (absl::Status s = CheckHeaderOwner(path, h, uuid, region_size); !s.ok())
    return s;
  const uint64_t regions = c.regions;
  std::string table(regions * kIndexRegionEntrySize, '\0');
  if (!table.empty() &&
      ::pread(fd, table.data(), table.size(), kIndexHeaderSize) !=
          static_cast<ssize_t>(table.size()))
    return Damaged(path, "shrank while being read");
  std::vector<IndexedRegion> out;
  if (absl::Status s =
          DecodeRegions(path, table.data(), regions, region_size, &out);
      !s.ok())
    return s;
  return out;
}

absl::Status PersistedIndex::Write(
    const std::string& path, const std::array<uint8_t, 16>& uuid,
    uint64_t region_size, uint64_t max_sequence,
    const std::vector<IndexedRegion>& regions,
    const std::vector<OffsetIndex::Slot>& entries) {
  absl::StatusOr<std::unique_ptr<PersistedIndexBuilder>> b =
      PersistedIndexBuilder::Create(path, uuid, region_size,
                                    static_cast<uint32_t>(regions.size()),
                                    OffsetIndex::SlotsFor(entries.size()));
  if (!b.ok()) return b.status();
  for (const OffsetIndex::Slot& e : entries) {
    if (!(*b)->Put(e.id, e.location))
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": more index entries than slots"));
  }
  return (*b)->Finish(max_sequence, regions);
}

absl::StatusOr<std::unique_ptr<PersistedIndexBuilder>>
PersistedIndexBuilder::Create(const std::string& path,
                              const std::array<uint8_t, 16>& uuid,
                              uint64_t region_size, uint32_t region_count,
                              uint64_t slots) {
  std::unique_ptr<PersistedIndexBuilder> b(new PersistedIndexBuilder());
  b->path_ = path;
  b->tmp_ = path + ".tmp";
  b->uuid_ = uuid;
  b->region_size_ = region_size;
  b->region_count_ = region_count;
  b->slots_ = std::max<uint64_t>(slots, 2);
  b->size_ = FileSize(region_count, b->slots_);
  if (absl::Status s = io::Open(b->tmp_, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                                0644, &b->fd_);
      !s.ok())
    return s;
  // Blocks reserved first, so that a full disk fails here, before any
  // work (the destructor removes the file).
  if (absl::Status s = io::Allocate(b->fd_, 0, b->size_, b->tmp_); !s.ok())
    return s;
  // Built in anonymous memory (zero-filled: every slot starts empty,
  // location 0) and written with pwrite at Finish: a store into a writable
  // mapping of the file would be a SIGBUS wherever its blocks could not be
  // allocated, and a write() is an error.
  void* m = ::mmap(nullptr, b->size_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return io::ErrnoStatus(errno, "mmap", b->tmp_);
  b->map_ = static_cast<char*>(m);
  b->table_ = b->map_ + kIndexHeaderSize + region_count * kIndexRegionEntrySize;
  return b;
}

PersistedIndexBuilder::~PersistedIndexBuilder() { Abandon(); }

void PersistedIndexBuilder::Abandon() {
  if (map_ != nullptr) ::munmap(map_, size_);
  map_ = nullptr;
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
  fd_ = -1;
}

uint64_t PersistedIndexBuilder::Probe(uint64_t id) const {
  uint64_t i = IndexHome(IndexHash(id), slots_);
  // Ends: the table always keeps an empty slot (Put).
  while (true) {
    const char* p = table_ + i * kIndexSlotSize;
    if (DecodeFixed64(p + 8) == 0 || DecodeFixed64(p) == id) return i;
    if (++i == slots_) i = 0;
  }
}

uint64_t PersistedIndexBuilder::Find(uint64_t id) const {
  return DecodeFixed64(table_ + Probe(id) * kIndexSlotSize + 8);
}

bool PersistedIndexBuilder::Put(uint64_t id, uint64_t location) {
  char* p = table_ + Probe(id) * kIndexSlotSize;
  if (DecodeFixed64(p + 8) == 0) {
    if (entries_ + 2 > slots_) return false;
    ++entries_;
  }
  EncodeFixed64(p, id);
  EncodeFixed64(p + 8, location);
  return true;
}

absl::Status PersistedIndexBuilder::Finish(
    uint64_t max_sequence, const std::vector<IndexedRegion>& regions) {
  if (map_ == nullptr) return absl::FailedPreconditionError("builder spent");
  if (regions.size() != region_count_) {
    Abandon();
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", regions.size(),
                                                   " region entries for ",
                                                   region_count_, " regions"));
  }
  char* p = map_;
  std::memcpy(p + kIxMagic, kIndexMagic, 8);
  EncodeFixed32(p + kIxVersion, kIndexVersion);
  EncodeFixed32(p + kIxRegionCount, region_count_);
  std::memcpy(p + kIxUuid, uuid_.data(), 16);
  EncodeFixed64(p + kIxRegionSize, region_size_);
  EncodeFixed64(p + kIxSlots, slots_);
  EncodeFixed64(p + kIxEntries, entries_);
  EncodeFixed64(p + kIxMaxSequence, max_sequence);
  char* r = p + kIndexHeaderSize;
  for (const IndexedRegion& g : regions) {
    EncodeFixed64(r, g.epoch);
    EncodeFixed64(r + 8, g.tail);
    EncodeFixed64(r + 16, g.records);
    EncodeFixed64(r + 24, g.fill);
    EncodeFixed64(r + 32, g.payload_bytes);
    EncodeFixed64(r + 40, 0);
    r += kIndexRegionEntrySize;
  }
  EncodeFixed64(p + size_ - 16, 0);  // reserved trailer word
  EncodeFixed64(p + size_ - 8, Checksum(p, size_));
  absl::Status written = io::Write(fd_, 0, p, size_, tmp_);
  ::munmap(map_, size_);
  map_ = nullptr;
  if (!written.ok()) {
    Abandon();
    return written;
  }
  if (absl::Status s = io::Fdatasync(fd_, tmp_); !s.ok()) {
    Abandon();
    return s;
  }
  ::close(fd_);
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    absl::Status s = io::ErrnoStatus(errno, "rename", tmp_);
    ::unlink(tmp_.c_str());
    return s;
  }
  return io::SyncParentDir(path_);
}

}  // namespace recmap
