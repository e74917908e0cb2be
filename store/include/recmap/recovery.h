// What an open found in the log and what its recovery cut: the report
// Store::last_recovery() returns (docs/DESIGN.md, "Recovery").
//
//   auto store = recmap::Store::Open(path, {});
//   const recmap::RecoveryReport& r = (*store)->last_recovery();
//   for (const recmap::RegionRecovery& rr : r.regions)
//     if (rr.changed()) Log(rr.region, rr.dropped_bytes(), rr.stop);
//
// Offsets are region-relative (a region's log starts at 8192); add
// RegionStats::file_offset for a file offset. Recovery counts bytes, not
// records, of what it cut: past the first invalid record nothing says where
// the next one starts.
#ifndef RECMAP_INCLUDE_RECMAP_RECOVERY_H_
#define RECMAP_INCLUDE_RECMAP_RECOVERY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "recmap/options.h"

namespace recmap {

// Why the read of a region's log stopped.
enum class LogEnd {
  kLimit,        // at the committed tail it was read to (a live writer's)
  kZero,         // at never-written space: the log ends cleanly
  kRegionEnd,    // no room for another record before the region's end
  kTruncated,    // a record runs past the end of what could be read
  kBadHeader,    // an invalid record header
  kBadChecksum,  // a record whose checksum does not match
};
// "limit", "end of log", "end of region", "truncated record", "invalid
// record header", "checksum mismatch".
const char* LogEndName(LogEnd end);
// True for the kinds that are damage: kTruncated, kBadHeader, kBadChecksum.
bool IsDamage(LogEnd end);

// What recovery found in one region.
struct RegionRecovery {
  uint32_t region = 0;
  uint64_t committed_tail = 0;  // as found
  uint64_t durable_tail = 0;    // as found; 0 when absent or invalid
  uint64_t valid_end = 0;       // end of the records kept
  uint64_t records = 0;         // records kept (puts, deletes, markers)
  LogEnd stop = LogEnd::kLimit;
  // Where the read stopped (kSalvage: the first damage it skipped).
  uint64_t stop_offset = 0;
  uint64_t skipped_bytes = 0;   // kSalvage: damaged bytes skipped
  bool header_damaged = false;  // region header invalid: region not used
  bool reformatted = false;     // an unformatted trailing region was formatted
  // Published bytes cut: the log ends below its committed tail (a power cut
  // lost pages that no Sync() had promised, damage in kTolerateTornTail).
  // A writable open cuts them; a read-only open cannot read them
  // (RecoveryReport::unreadable_bytes). Bytes past the committed tail that
  // a writer left unpublished (a record torn by a crash) are not counted:
  // stop and stop_offset say where they start.
  uint64_t dropped_bytes() const {
    return valid_end < committed_tail ? committed_tail - valid_end : 0;
  }
  // Anything recovery changed or would change: a damaged header, a
  // reformat, a log that does not end at its committed tail (cut short, or
  // longer: complete records a killed writer never published are kept),
  // skipped damage.
  bool changed() const {
    return header_damaged || reformatted || valid_end != committed_tail ||
           skipped_bytes != 0;
  }
};

struct RecoveryReport {
  RecoveryMode mode = RecoveryMode::kTolerateTornTail;  // Options's
  // No handle had the store open for writing: every region's log was read
  // past its committed tail, as far as it validates (kAbsoluteConsistency:
  // to its tail). Otherwise each log was read to its committed tail, which
  // a live writer vouches for, and nothing was cut.
  bool full_recovery = false;
  // One entry per region of the file at open, in region order.
  std::vector<RegionRecovery> regions;
  uint64_t trailing_bytes = 0;  // bytes past the last whole region
  // A read-only open of a file whose last region is cut short maps that
  // region with zero pages past the end of the file (in memory only; the
  // file is not changed), so the records of its surviving part are read as
  // a first writer would recover them. -1: no region is cut.
  int64_t cut_region = -1;
  // Published log bytes (below a region's committed tail) that this
  // read-only open found missing or unreadable, and one line per region
  // saying where and why (as StoreStats::unreadable). Writable opens
  // recover instead (and leave these empty).
  uint64_t unreadable_bytes = 0;
  std::vector<std::string> unreadable;
  // The persisted index file (Options::persist_index): whether it was
  // used, and if one was found but not trusted, why.
  bool persisted_index_used = false;
  std::string persisted_index_rejected;
  // Records (and resume markers) read and verified from the log at open;
  // with a persisted index, only those past its covered tails.
  uint64_t scanned_records = 0;
};

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_RECOVERY_H_
