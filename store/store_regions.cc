// Region lifecycle shared by all handles: following growth by other
// processes, formatting a region, scrubbing the bytes past a tail.
#include <sys/random.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_ops.h"
#include "store_rep.h"

namespace recmap {

absl::Status StoreRep::LoadNewRegions() {
  uint64_t shared = shared_region_count().load(std::memory_order_acquire);
  if (shared <= known_regions()) return absl::OkStatus();
  absl::MutexLock lock(&regions_mu_);
  return LoadNewRegionsLocked();
}

absl::Status StoreRep::LoadNewRegionsLocked() {
  uint64_t shared = shared_region_count().load(std::memory_order_acquire);
  uint32_t known = known_regions();
  if (shared <= known) return absl::OkStatus();
  // The shared page is a hint; the file size is the bound. A read-only
  // handle of a crashed file may see a garbage count here.
  struct stat st;
  if (::fstat(fd_, &st) != 0) return io::ErrnoStatus(errno, "fstat", path_);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t by_size = size < kFirstRegionOffset
                         ? 0
                         : (size - kFirstRegionOffset) / region_size();
  uint64_t target = std::min({shared, by_size, uint64_t{max_regions_}});
  if (target <= known) return absl::OkStatus();
  if (absl::Status s =
          map_.EnsureMapped(fd_, RegionOffset(target), read_only(), path_);
      !s.ok())
    return s;
  regions_.Ensure(static_cast<uint32_t>(target));
  for (uint32_t i = known; i < target; ++i) {
    if (absl::Status s = LoadRegionHeader(i, /*allow_unformatted=*/true);
        !s.ok())
      return s;
  }
  known_regions_.store(static_cast<uint32_t>(target),
                       std::memory_order_release);
  return absl::OkStatus();
}

absl::Status StoreRep::LoadNewRegionsForGrowth(uint32_t count) {
  if (count > max_regions_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path_, ": too many regions for max_file_size"));
  }
  if (absl::Status s =
          map_.EnsureMapped(fd_, RegionOffset(count), read_only(), path_);
      !s.ok())
    return s;
  absl::MutexLock lock(&regions_mu_);
  regions_.Ensure(count);
  return absl::OkStatus();
}

void StoreRep::PublishRegionCount(uint32_t count) {
  absl::MutexLock lock(&regions_mu_);
  known_regions_.store(count, std::memory_order_release);
  shared_region_count().store(count, std::memory_order_release);
}

absl::Status StoreRep::FormatRegion(uint32_t i, bool fresh) {
  RegionInfo& ri = regions_[i];
  RegionHeader rh;
  rh.index = i;
  rh.region_size = region_size();
  rh.file_uuid = header_.uuid;
  do {
    if (::getrandom(&rh.epoch, sizeof(rh.epoch), 0) != sizeof(rh.epoch)) {
      rh.epoch = static_cast<uint64_t>(::time(nullptr)) * 0x9E3779B97F4A7C15ULL;
    }
  } while (rh.epoch == 0);
  char* base = map_.base() + RegionOffset(i);
  ri.ref.base = base;
  ri.ref.size = region_size();
  ri.ref.index = i;
  ri.ref.seed = RegionSeed(header_.uuid, i, rh.epoch);
  if (fresh) {
    // A fresh region (just allocated: its log reads as zeros) needs only
    // its header and state pages made durable before it is published. A
    // ranged durable write does that without flushing the file's other
    // dirty pages: an fdatasync here would write back the whole region the
    // grower just filled (about 100 ms per 64 MiB on this class of disk).
    std::vector<char> pages(kRegionDataOffset, 0);
    rh.EncodeTo(pages.data());
    EncodeFixed64(pages.data() + kRegionStatePageOffset + kStateCommittedTail,
                  kRegionDataOffset);
    if (absl::Status s =
            WriteDurable(RegionOffset(i), pages.data(), pages.size());
        !s.ok())
      return s;
  } else {
    // A reformatted region may hold bytes of an earlier life; the new
    // epoch already invalidates them, and zeroing the log makes the empty
    // log end cleanly. Its pages are backed before they are stored into.
    if (absl::Status s =
            io::Allocate(fd_, RegionOffset(i), region_size(), path_);
        !s.ok())
      return s;
    std::memset(base, 0, kRegionDataOffset);
    rh.EncodeTo(base);
    if (absl::Status s =
            io::ZeroRange(fd_, RegionOffset(i) + kRegionDataOffset,
                          region_size() - kRegionDataOffset, path_);
        !s.ok())
      return s;
    ri.ref.committed_tail().store(kRegionDataOffset, std::memory_order_release);
    if (absl::Status s = FlushFile(); !s.ok()) return s;
  }
  ri.formatted = true;
  ri.damaged = false;
  ri.indexed_end.store(kRegionDataOffset, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status StoreRep::ScrubTail(uint32_t i, uint64_t tail) {
  const RegionRef& r = regions_[i].ref;
  const uint64_t page_end = (tail + kPageSize - 1) / kPageSize * kPageSize;
  // Backed before the tail page is stored into (no SIGBUS on a full disk).
  const uint64_t page_start = tail / kPageSize * kPageSize;
  if (page_start < r.size) {
    if (absl::Status s = io::Allocate(fd_, RegionOffset(i) + page_start,
                                      r.size - page_start, path_);
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
  if (absl::Status s = io::ZeroRange(fd_, RegionOffset(i) + page_end,
                                     r.size - page_end, path_);
      !s.ok())
    return s;
  return FlushFile();
}

}  // namespace recmap
