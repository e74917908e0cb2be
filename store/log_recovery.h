// Recovering each region's log at open (docs/DESIGN.md, "Recovery"): how
// far each region's log is read, which losses each RecoveryMode accepts,
// and -- for a first writer, with no writer live -- cutting the log at the
// end of what validated so that nothing stale past it can ever validate.
// Every record kept is indexed (StoreIndex) on the way; what was found is
// reported in a RecoveryReport.
#ifndef RECMAP_STORE_LOG_RECOVERY_H_
#define RECMAP_STORE_LOG_RECOVERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/options.h"
#include "region.h"

namespace recmap {

struct RegionInfo;
class RegionSet;
class StoreIndex;

// What recovery found in one region at open.
struct RegionRecovery {
  uint32_t region = 0;
  uint64_t committed_tail = 0;  // as found (region-relative)
  uint64_t durable_tail = 0;    // as found; 0 when absent or invalid
  uint64_t valid_end = 0;       // end of the valid records kept
  uint64_t records = 0;
  ScanStop stop = ScanStop::kLimit;
  uint64_t stop_offset = 0;     // region-relative offset where the scan stopped
  uint64_t skipped_bytes = 0;   // salvage: damaged bytes skipped inside the log
  bool header_damaged = false;  // region header invalid: region not used
  bool reformatted = false;     // an unformatted trailing region was formatted
  bool changed() const {
    return header_damaged || reformatted || valid_end != committed_tail ||
           skipped_bytes != 0;
  }
};

struct RecoveryReport {
  bool full_recovery = false;  // no writer was live: the log was rescanned
  std::vector<RegionRecovery> regions;
  uint64_t trailing_bytes = 0;  // bytes past the last whole region
  // A read-only open of a file whose last region is cut short maps that
  // region with zero pages past the end of the file (in memory only; the
  // file is not changed), so the records of its surviving part are read as
  // a first writer would recover them. -1: no region is cut.
  int64_t cut_region = -1;
  // Published log bytes (below a region's committed tail) that this
  // read-only open found missing or unreadable, and one line per region
  // saying where and why. Writable opens recover instead (and log nothing
  // here).
  uint64_t unreadable_bytes = 0;
  std::vector<std::string> unreadable;
  // The persisted index (persisted_index.h): whether it was used, and if
  // one was found but not trusted, why.
  bool persisted_index_used = false;
  std::string persisted_index_rejected;
  // Records (and resume markers) read and verified from the log at open;
  // with a persisted index, only those past its covered tails.
  uint64_t scanned_records = 0;
};

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
