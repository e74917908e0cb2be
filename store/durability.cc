#include "durability.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "file_ops.h"
#include "format.h"
#include "mapping.h"
#include "region_set.h"

namespace recmap {

absl::Status Durability::Check() const {
  absl::MutexLock lock(&mu_);
  if (error_.ok()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(*path_, ": an earlier flush failed (", error_.message(),
                   "); this handle can no longer promise durability"));
}

absl::Status Durability::first_error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

absl::Status Durability::Poison(absl::Status s) {
  if (!s.ok()) {
    absl::MutexLock lock(&mu_);
    if (error_.ok()) error_ = s;
  }
  return s;
}

absl::Status Durability::FlushFile() {
  if (absl::Status s = Check(); !s.ok()) return s;
  return Poison(io::Fdatasync(fd_, *path_));
}

absl::Status Durability::WriteDurable(uint64_t offset, const void* data,
                                      size_t len) {
  if (absl::Status s = Check(); !s.ok()) return s;
  return Poison(io::WriteDurable(fd_, offset, data, len, *path_));
}

absl::Status Durability::Sync(RegionSet& regions) {
  absl::MutexLock lock(&sync_mu_);
  if (absl::Status s = Check(); !s.ok()) return s;
  if (absl::Status s = regions.LoadNew(); !s.ok()) return s;
  const uint32_t n = regions.known();
  std::vector<uint64_t> tails(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    if (regions[i].formatted) {
      tails[i] =
          regions[i].ref.committed_tail().load(std::memory_order_acquire);
    }
  }
  // Step 1: every page holding a record below the tails just read.
  if (absl::Status s = FlushFile(); !s.ok()) return s;
  // Step 2: the durable tails, a floor for recovery after a power loss.
  bool moved = false;
  for (uint32_t i = 0; i < n; ++i) {
    const RegionRef& r = regions[i].ref;
    if (!regions[i].formatted || !r.PlausibleTail(tails[i])) continue;
    if (tails[i] > r.DurableTail()) {
      r.SetDurableTail(tails[i]);
      moved = true;
    }
  }
  if (moved) return FlushFile();
  return absl::OkStatus();
}

}  // namespace recmap
