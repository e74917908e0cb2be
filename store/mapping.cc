#include "mapping.h"

#include <sys/mman.h>

#include "absl/strings/str_cat.h"
#include "file_ops.h"

namespace recmap {

Mapping::~Mapping() {
  if (base_ != nullptr) io::Unmap(base_, reserved_);
}

absl::Status Mapping::Reserve(uint64_t reserve) {
  void* p = nullptr;
  if (absl::Status s = io::Map(nullptr, reserve, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                               0, "address space reservation", &p);
      !s.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot reserve ", reserve,
                     " bytes of address space (max_file_size): ", s.message()));
  }
  base_ = static_cast<char*>(p);
  reserved_ = reserve;
  return absl::OkStatus();
}

absl::Status Mapping::EnsureMapped(int fd, uint64_t size, bool read_only,
                                   const std::string& path) {
  if (size <= mapped()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  uint64_t have = mapped_.load(std::memory_order_relaxed);
  if (size <= have) return absl::OkStatus();
  if (size > reserved_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": file of ", size, " bytes exceeds max_file_size ", reserved_));
  }
  // Map whole pages; `have` is always page-aligned.
  const uint64_t page = 4096;
  const uint64_t want = (size + page - 1) / page * page;
  const int prot = read_only ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = nullptr;
  if (absl::Status s = io::Map(base_ + have, want - have, prot,
                               MAP_SHARED | MAP_FIXED, fd, have, path, &p);
      !s.ok())
    return s;
  mapped_.store(want, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status Mapping::MapZeros(uint64_t end, const std::string& path) {
  absl::MutexLock lock(&mu_);
  const uint64_t have = mapped_.load(std::memory_order_relaxed);
  const uint64_t page = 4096;
  const uint64_t want = (end + page - 1) / page * page;
  if (want <= have) return absl::OkStatus();
  if (want > reserved_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, ": ", want, " bytes exceed max_file_size ", reserved_));
  }
  void* p = nullptr;
  if (absl::Status s =
          io::Map(base_ + have, want - have, PROT_READ,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
                  0, path, &p);
      !s.ok())
    return s;
  mapped_.store(want, std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace recmap
