#include "region_set.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "durability.h"
#include "file_ops.h"
#include "mapping.h"

namespace recmap {

void RegionSet::Table::Init(uint32_t max_regions) {
  max_ = max_regions;
  chunks_ = std::make_unique<std::atomic<RegionInfo*>[]>(
      (max_regions + kChunk - 1) / kChunk);
}

RegionSet::Table::~Table() {
  for (uint32_t c = 0; c < (max_ + kChunk - 1) / kChunk; ++c) {
    delete[] chunks_[c].load(std::memory_order_relaxed);
  }
}

void RegionSet::Table::Ensure(uint32_t count) {
  for (uint32_t c = 0; c < (count + kChunk - 1) / kChunk; ++c) {
    if (chunks_[c].load(std::memory_order_acquire) == nullptr) {
      chunks_[c].store(new RegionInfo[kChunk], std::memory_order_release);
    }
  }
}

void RegionSet::Init(const Config& config, uint32_t max_regions) {
  c_ = config;
  region_size_ = c_.header->region_size;
  max_ = max_regions;
  table_.Init(max_regions);
}

std::atomic_ref<uint64_t> RegionSet::shared_count() const {
  return MappedWord64(c_.map->base() + kSharedPageOffset, kSharedRegionCount);
}

absl::Status RegionSet::LoadHeader(uint32_t i, bool allow_unformatted) {
  RegionInfo& ri = table_[i];
  ri.ref.base = c_.map->base() + Offset(i);
  ri.ref.size = region_size_;
  ri.ref.index = i;
  RegionHeader rh;
  absl::Status s = rh.DecodeFrom(ri.ref.base, kPageSize);
  if (s.ok() && (rh.index != i || rh.file_uuid != c_.header->uuid ||
                 rh.region_size != region_size_)) {
    s = absl::DataLossError("region header belongs to another region or file");
  }
  if (s.ok()) {
    ri.formatted = true;
    ri.ref.seed = RegionSeed(c_.header->uuid, i, rh.epoch);
    return absl::OkStatus();
  }
  ri.formatted = false;
  // Only the last region can be caught between growing the file and syncing
  // its header, and then nothing was ever written into its log (writers
  // start after the header is synced): its first record slot is zero.
  // Anywhere else, or with records behind it, an unreadable header is
  // damage.
  bool log_empty = true;
  for (uint64_t k = 0; k < kRecordHeaderSize; ++k) {
    log_empty = log_empty && ri.ref.base[kRegionDataOffset + k] == 0;
  }
  const bool tolerate = allow_unformatted && log_empty &&
                        c_.recovery_mode != RecoveryMode::kAbsoluteConsistency;
  if (tolerate || c_.recovery_mode == RecoveryMode::kSalvage) {
    ri.damaged = !tolerate;
    ri.damage = std::string(s.message());
    return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrCat(*c_.path, ": region ", i,
                                          " header at offset ", Offset(i), ": ",
                                          s.message()));
}

absl::Status RegionSet::ReloadHeader(uint32_t i) {
  absl::MutexLock lock(&mu_);
  return LoadHeader(i, /*allow_unformatted=*/true);
}

bool RegionSet::ReadHeaderAt(uint32_t i, RegionRef* ref,
                             uint64_t* epoch) const {
  char* base = c_.map->base() + Offset(i);
  RegionHeader rh;
  if (!rh.DecodeFrom(base, kPageSize).ok() || rh.index != i ||
      rh.file_uuid != c_.header->uuid || rh.region_size != region_size_)
    return false;
  ref->base = base;
  ref->size = region_size_;
  ref->index = i;
  ref->seed = RegionSeed(c_.header->uuid, i, rh.epoch);
  *epoch = rh.epoch;
  return true;
}

absl::Status RegionSet::LoadNew() {
  if (shared_count().load(std::memory_order_acquire) <= known())
    return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return LoadNewLocked();
}

absl::Status RegionSet::LoadNewLocked() {
  const uint64_t shared = shared_count().load(std::memory_order_acquire);
  const uint32_t known_now = known();
  if (shared <= known_now) return absl::OkStatus();
  // The shared page is a hint; the file size is the bound. A read-only
  // handle of a crashed file may see a garbage count here.
  struct stat st;
  if (absl::Status s = io::Fstat(c_.fd, *c_.path, &st); !s.ok()) return s;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t by_size = size < kFirstRegionOffset
                               ? 0
                               : (size - kFirstRegionOffset) / region_size_;
  const uint64_t target = std::min({shared, by_size, uint64_t{max_}});
  if (target <= known_now) return absl::OkStatus();
  if (absl::Status s = c_.map->EnsureMapped(
          c_.fd, Offset(static_cast<uint32_t>(target)), c_.read_only, *c_.path);
      !s.ok())
    return s;
  table_.Ensure(static_cast<uint32_t>(target));
  for (uint32_t i = known_now; i < target; ++i) {
    if (absl::Status s = LoadHeader(i, /*allow_unformatted=*/true); !s.ok())
      return s;
  }
  known_.store(static_cast<uint32_t>(target), std::memory_order_release);
  return absl::OkStatus();
}

absl::Status RegionSet::LoadForGrowth(uint32_t count) {
  if (count > max_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(*c_.path, ": too many regions for max_file_size"));
  }
  if (absl::Status s =
          c_.map->EnsureMapped(c_.fd, Offset(count), c_.read_only, *c_.path);
      !s.ok())
    return s;
  absl::MutexLock lock(&mu_);
  table_.Ensure(count);
  return absl::OkStatus();
}

void RegionSet::PublishCount(uint32_t count) {
  absl::MutexLock lock(&mu_);
  known_.store(count, std::memory_order_release);
  shared_count().store(count, std::memory_order_release);
}

absl::Status RegionSet::Format(uint32_t i, bool fresh) {
  RegionInfo& ri = table_[i];
  RegionHeader rh;
  rh.index = i;
  rh.region_size = region_size_;
  rh.file_uuid = c_.header->uuid;
  do {
    if (::getrandom(&rh.epoch, sizeof(rh.epoch), 0) != sizeof(rh.epoch)) {
      rh.epoch = static_cast<uint64_t>(::time(nullptr)) * 0x9E3779B97F4A7C15ULL;
    }
  } while (rh.epoch == 0);
  ri.ref.base = c_.map->base() + Offset(i);
  ri.ref.size = region_size_;
  ri.ref.index = i;
  ri.ref.seed = RegionSeed(c_.header->uuid, i, rh.epoch);
  if (absl::Status s = fresh ? WriteFreshRegion(i, rh) : ResetRegion(i, rh);
      !s.ok())
    return s;
  ri.formatted = true;
  ri.damaged = false;
  ri.indexed_end.store(kRegionDataOffset, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status RegionSet::WriteFreshRegion(uint32_t i, const RegionHeader& rh) {
  // A fresh region (just allocated: its log reads as zeros) needs only its
  // header and state pages made durable before it is published. A ranged
  // durable write does that without flushing the file's other dirty pages:
  // an fdatasync here would write back the whole region the grower just
  // filled.
  std::vector<char> pages(kRegionDataOffset, 0);
  rh.EncodeTo(pages.data());
  EncodeFixed64(pages.data() + kRegionStatePageOffset + kStateCommittedTail,
                kRegionDataOffset);
  return c_.durability->WriteDurable(Offset(i), pages.data(), pages.size());
}

absl::Status RegionSet::ResetRegion(uint32_t i, const RegionHeader& rh) {
  // A reformatted region may hold bytes of an earlier life; the new epoch
  // already invalidates them, and zeroing the log makes the empty log end
  // cleanly. Its pages are backed before they are stored into.
  RegionInfo& ri = table_[i];
  if (absl::Status s = io::Allocate(c_.fd, Offset(i), region_size_, *c_.path);
      !s.ok())
    return s;
  std::memset(ri.ref.base, 0, kRegionDataOffset);
  rh.EncodeTo(ri.ref.base);
  if (absl::Status s =
          io::ZeroRange(c_.fd, Offset(i) + kRegionDataOffset,
                        region_size_ - kRegionDataOffset, *c_.path);
      !s.ok())
    return s;
  ri.ref.committed_tail().store(kRegionDataOffset, std::memory_order_release);
  return c_.durability->FlushFile();
}

absl::Status RegionSet::ScrubTail(uint32_t i, uint64_t tail) {
  const RegionRef& r = table_[i].ref;
  const uint64_t page_end = (tail + kPageSize - 1) / kPageSize * kPageSize;
  // Backed before the tail page is stored into (no SIGBUS on a full disk).
  const uint64_t page_start = tail / kPageSize * kPageSize;
  if (page_start < r.size) {
    if (absl::Status s = io::Allocate(c_.fd, Offset(i) + page_start,
                                      r.size - page_start, *c_.path);
        !s.ok())
      return s;
  }
  // Write the tail page only if it holds stale bytes: storing into a page
  // dirties it, and the page may hold synced records that must not be put
  // through another write-back (see ResumeMarkerAfterGap).
  for (uint64_t p = tail; p < page_end; p += 8) {
    if (DecodeFixed64(r.base + p) != 0) {
      std::memset(r.base + tail, 0, page_end - tail);
      break;
    }
  }
  if (absl::Status s = io::ZeroRange(c_.fd, Offset(i) + page_end,
                                     r.size - page_end, *c_.path);
      !s.ok())
    return s;
  return c_.durability->FlushFile();
}

}  // namespace recmap
