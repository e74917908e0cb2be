// A file mapping that grows without moving: one address-space reservation
// made at open, into which successive ranges of the file are mapped with
// MAP_FIXED. Views into mapped bytes stay valid for the mapping's lifetime.
#ifndef RECMAP_STORE_MAPPING_H_
#define RECMAP_STORE_MAPPING_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace recmap {

class Mapping {
 public:
  Mapping() = default;
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  // Reserves `reserve` bytes of address space (PROT_NONE, no memory).
  // Errors: ResourceExhausted.
  absl::Status Reserve(uint64_t reserve);
  // Ensures [0, size) of `fd` is mapped (shared; writable unless read_only).
  // Thread-safe. Errors: ResourceExhausted (beyond the reservation),
  // Internal.
  absl::Status EnsureMapped(int fd, uint64_t size, bool read_only,
                            const std::string& path);

  // Maps anonymous read-only zero pages over [mapped(), end) and counts
  // them as mapped: a read-only view of a file whose last region is cut
  // short, where the missing bytes read as zeros (as if the file had been
  // extended) instead of raising SIGBUS. Later EnsureMapped calls map the
  // file from `end` on. Errors: ResourceExhausted (beyond the reservation),
  // Internal.
  absl::Status MapZeros(uint64_t end, const std::string& path);

  char* base() const { return base_; }
  // Bytes of the file currently mapped (acquire).
  uint64_t mapped() const { return mapped_.load(std::memory_order_acquire); }

 private:
  char* base_ = nullptr;
  uint64_t reserved_ = 0;
  std::atomic<uint64_t> mapped_{0};
  absl::Mutex mu_;
};

}  // namespace recmap

#endif  // RECMAP_STORE_MAPPING_H_
