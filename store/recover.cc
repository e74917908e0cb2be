#include "recover.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_lock.h"
#include "persisted_index.h"
#include "recmap/store.h"
#include "store_rep.h"
#include "verify.h"

namespace recmap {
namespace {

// Region-relative end of the last non-zero 8 bytes at or after `from`, or
// `from` if all zero.
uint64_t LastNonZeroEnd(const RegionRef& r, uint64_t from) {
  for (uint64_t pos = r.size; pos >= from + 8; pos -= 8) {
    if (DecodeFixed64(r.base + pos - 8) != 0) return pos;
  }
  return from;
}

// What recovery in `mode` drops, from a read-only open (which recovers in
// memory exactly as a first writer would, without writing).
absl::StatusOr<RecoverResult> Plan(const std::string& path, RecoveryMode mode) {
  Options o;
  o.read_only = true;
  o.recovery_mode = mode;
  // Every record is read and verified: the persisted index would let the
  // log it covers go unread, and damage there (what verify reports) would
  // go unrepaired and unreported.
  o.persist_index = false;
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(path, o);
  if (!opened.ok()) return opened.status();
  StoreRep* rep = (*opened)->rep();
  const RecoveryReport& report = rep->recovery();
  RecoverResult out;
  out.mode = mode;
  out.regions = rep->known_regions();
  out.trailing_bytes = report.trailing_bytes;
  for (const RegionRecovery& rr : report.regions) {
    const uint64_t base = rep->RegionOffset(rr.region);
    StoreRep::RegionInfo& ri = rep->region(rr.region);
    out.records_kept += rr.records;
    if (rr.header_damaged) {
      out.drops.push_back({rr.region, base, rep->region_size(),
                           absl::StrCat("region header: ", ri.damage), true});
      continue;
    }
    if (!ri.formatted) continue;
    if (rr.skipped_bytes != 0) {
      out.drops.push_back(
          {rr.region, base + rr.stop_offset, rr.skipped_bytes,
           absl::StrCat("skipped damage (", ScanStopName(rr.stop), ")"), true});
    }
    const uint64_t end = LastNonZeroEnd(ri.ref, rr.valid_end);
    if (end > rr.valid_end) {
      const bool published = ri.ref.PlausibleTail(rr.committed_tail) &&
                             rr.valid_end < rr.committed_tail;
      out.drops.push_back(
          {rr.region, base + rr.valid_end, end - rr.valid_end,
           absl::StrCat(published ? "damaged log: " : "torn tail: ",
                        IsDamage(rr.stop) ? ScanStopName(rr.stop)
                                          : "bytes past the end of the log"),
           published});
    }
  }
  return out;
}

}  // namespace

const char* RecoveryModeName(RecoveryMode mode) {
  switch (mode) {
    case RecoveryMode::kTolerateTornTail:
      return "tolerate";
    case RecoveryMode::kAbsoluteConsistency:
      return "absolute";
    case RecoveryMode::kSalvage:
      return "salvage";
  }
  return "?";
}

absl::StatusOr<RecoverResult> RecoverStore(const std::string& path,
                                           const RecoverOptions& options) {
  if (!options.dry_run) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      absl::StatusOr<bool> live =
          IsLockedByOther(fd, kLockWriters, LockKind::kExclusive);
      ::close(fd);
      if (!live.ok()) return live.status();
      if (*live) {
        return absl::FailedPreconditionError(
            absl::StrCat(path,
                         ": writers have the store open; recover it when they "
                         "are gone (or use --dry-run)"));
      }
    }
  }
  absl::StatusOr<RecoverResult> plan = Plan(path, options.mode);
  if (!plan.ok()) return plan.status();
  plan->dry_run = options.dry_run;
  // Each step counts as the file's bytes.
  struct stat sb;
  const uint64_t step = ::stat(path.c_str(), &sb) == 0 ? sb.st_size : 0;
  VerifyProgress done;
  done.bytes_total = options.dry_run ? step : 3 * step;
  auto report = [&](uint64_t bytes) {
    if (!options.progress) return;
    done.bytes = std::min(bytes, done.bytes_total);
    done.records = plan->records_kept;
    options.progress(done);
  };
  report(step);
  if (!options.dry_run) {
    // The index file is only a cache of the log as it was: drop it, so the
    // open below reads and verifies every record (as the plan did) and its
    // close writes an index of the recovered log.
    const std::string idx = IndexPathFor(path);
    if (::unlink(idx.c_str()) != 0 && errno != ENOENT) {
      return absl::InternalError(absl::StrCat(
          idx, ": cannot remove the index file: ", std::strerror(errno)));
    }
    Options o;
    o.recovery_mode = options.mode;
    {
      absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
      if (!st.ok()) return st.status();
    }
    report(2 * step);
    // Hold the result to what verify checks: recover succeeds only if
    // verify will then find nothing.
    VerifyProgressFn check_progress;
    if (options.progress) {
      check_progress = [&](const VerifyProgress& p) {
        report(2 * step + p.bytes);
      };
    }
    absl::StatusOr<VerifyReport> check = VerifyStore(path, check_progress);
    if (!check.ok()) return check.status();
    for (const VerifyIssue& i : check->issues) {
      plan->remaining_damage.push_back(
          absl::StrCat("offset ", i.file_offset, ": ", i.what));
    }
    report(3 * step);
  }
  return plan;
}

}  // namespace recmap
