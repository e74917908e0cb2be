// Recovering each region's log at open (docs/DESIGN.md, "Recovery"): how
// far each region's log is read, which losses each RecoveryMode accepts,
// and -- for a first writer, with no writer live -- cutting the log at the
// end of what validated so that nothing stale past it can ever validate.
// Every record kept is indexed (StoreIndex) on the way; what was found is
// reported in a RecoveryReport (recmap/recovery.h).
#ifndef RECMAP_STORE_LOG_RECOVERY_H_
#define RECMAP_STORE_LOG_RECOVERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/options.h"
#include "recmap/recovery.h"
#include "region.h"

namespace recmap {

struct RegionInfo;
class RegionSet;
class StoreIndex;

class LogRecovery {
 public:
  // What recovery works on. Every pointer outlives the LogRecovery.
  struct Config {
    const std::string* path = nullptr;  // the store file's, for errors
    RecoveryMode recovery_mode = RecoveryMode::kTolerateTornTail;
    bool read_only = false;
    RegionSet* regions = nullptr;  // mapped, headers loaded
    StoreIndex* index = nullptr;   // initialised, the base adopted
    RecoveryReport* report = nullptr;
  };
  explicit LogRecovery(const Config& config) : c_(config) {}

  // Recovers every known region in order; `full`: no writer is live (the
  // whole log is read, and a writable handle repairs it). Returns the
  // largest sequence number found. Errors: DataLoss when the mode may not
  // lose what was lost (the message names the region and offset), or the
  // failure of a repair's I/O.
  absl::StatusOr<uint64_t> Run(bool full);

 private:
  RegionInfo& region(uint32_t i) const;
  absl::Status RecoverRegion(uint32_t i, uint64_t* max_seq);
  // A region whose header does not validate: a first writer formats a
  // trailing one afresh.
  absl::Status RecoverUnformatted(uint32_t i, RegionRecovery* rr);
  // Where the scan of region i stops reading.
  absl::StatusOr<uint64_t> ScanLimit(uint32_t i,
                                     const RegionRecovery& rr) const;
  // Scans and indexes region i past what the persisted index covers.
  ScanResult Scan(uint32_t i, uint64_t limit, uint64_t* max_seq,
                  RegionRecovery* rr);
  // DataLoss if the log lost what this mode may not lose.
  absl::Status CheckLog(uint32_t i, const RegionRecovery& rr,
                        const ScanResult& res, uint64_t limit) const;
  // Read-only, no live writer: published records this handle cannot read.
  void ReportUnreadable(uint32_t i, const RegionRecovery& rr,
                        const ScanResult& res);
  // A first writer: cuts the log at the end of what validated.
  absl::Status Repair(uint32_t i, const RegionRecovery& rr,
                      const ScanResult& res);

  const Config c_;
  bool full_ = false;
};

}  // namespace recmap

#endif  // RECMAP_STORE_LOG_RECOVERY_H_
