// fsck for a store file: every region header, every record, the durable and
// committed tails, sequence uniqueness and the offset index, checked without
// modifying the file. Used by `recmap verify` and the crash tests.
#ifndef RECMAP_STORE_VERIFY_H_
#define RECMAP_STORE_VERIFY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace recmap {

// One problem, with where it is.
struct VerifyIssue {
  int64_t region = -1;       // -1: not about one region
  uint64_t file_offset = 0;  // where the problem starts
  std::string what;
};

struct VerifyReport {
  uint32_t regions = 0;
  uint64_t records = 0;  // valid records (puts, deletes, padding)
  uint64_t puts = 0;
  uint64_t deletes = 0;
  uint64_t payload_bytes = 0;
  uint64_t indexed_ids = 0;   // ids the index resolves
  uint64_t torn_tails = 0;    // regions with unpublished bytes past the log
  bool writers_live = false;  // checked beside live writers: tails moving
  // Damage: anything that a default-mode recovery would not cut silently,
  // and index inconsistencies. Torn tails past the committed tail (a writer
  // killed mid-record) are normal after a crash and are counted, not listed.
  std::vector<VerifyIssue> issues;
  bool clean() const { return issues.empty(); }
};

// How far a check has come: `bytes` of the regions' `bytes_total` read,
// `records` valid records found so far.
struct VerifyProgress {
  uint64_t bytes = 0;
  uint64_t bytes_total = 0;
  uint64_t records = 0;
};
using VerifyProgressFn = std::function<void(const VerifyProgress&)>;

// Verifies the store at `path` (opened read-only, in salvage mode so that
// damage is reported rather than refused). Errors: what Store::Open returns
// for a file that is not a store at all (NotFound, DataLoss for a bad file
// header, PermissionDenied, ...). Damage inside the store is not an error:
// it is in the report. `progress`, if set, is called on the calling thread
// after each region and every 16384 records within one.
[[nodiscard]] absl::StatusOr<VerifyReport> VerifyStore(
    const std::string& path, const VerifyProgressFn& progress = nullptr);

}  // namespace recmap

#endif  // RECMAP_STORE_VERIFY_H_
