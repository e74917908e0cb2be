// Durability of a writable handle: every flush of the store file, Sync()'s
// protocol, and poisoning. A failed flush poisons the handle for good:
// Linux may have dropped the dirty pages it could not write back, and a
// later flush that succeeds would not bring them back, so from then on
// every flush (and so every Sync) fails.
#ifndef RECMAP_STORE_DURABILITY_H_
#define RECMAP_STORE_DURABILITY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace recmap {

class RegionSet;

class Durability {
 public:
  Durability() = default;
  Durability(const Durability&) = delete;
  Durability& operator=(const Durability&) = delete;

  // Binds the store file (`fd`, named `path` in errors). Called once, at
  // open, before any flush; `path` outlives this object.
  void Init(int fd, const std::string* path) {
    fd_ = fd;
    path_ = path;
  }

  // FailedPrecondition naming the first failed flush if the handle is
  // poisoned, else OK.
  absl::Status Check() const ABSL_LOCKS_EXCLUDED(mu_);
  // The first failed flush itself (OK if none): what Close() reports.
  absl::Status first_error() const ABSL_LOCKS_EXCLUDED(mu_);

  // fdatasync of the store file.
  absl::Status FlushFile() ABSL_LOCKS_EXCLUDED(mu_);
  // Writes `len` bytes at file offset `offset` (through the page cache, so
  // the mapping sees them) and makes just that range durable.
  absl::Status WriteDurable(uint64_t offset, const void* data, size_t len)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Each returns Check()'s error without flushing if already poisoned, and
  // poisons the handle on failure.

  // Store::Sync: makes every record published in `regions` when it starts
  // durable, then raises each region's durable tail to what it made
  // durable (two flushes; the second only if a tail moved). Serialised
  // with other Sync calls.
  absl::Status Sync(RegionSet& regions) ABSL_LOCKS_EXCLUDED(sync_mu_, mu_);

 private:
  // Keeps the first failure; returns `s`.
  absl::Status Poison(absl::Status s) ABSL_LOCKS_EXCLUDED(mu_);

  int fd_ = -1;
  const std::string* path_ = nullptr;
  absl::Mutex sync_mu_;  // serialises Sync() calls
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);  // the first failed flush
};

}  // namespace recmap

#endif  // RECMAP_STORE_DURABILITY_H_
