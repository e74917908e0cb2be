#include "recover.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_lock.h"
#include "file_ops.h"
#include "persisted_index.h"
#include "recmap/store.h"
#include "store_peer.h"
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
  StoreRep* rep = &StorePeer::Rep(**opened);
  const RecoveryReport& report = (*opened)->last_recovery();
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
           absl::StrCat("skipped damage (", LogEndName(rr.stop), ")"), true});
    }
    const uint64_t end = LastNonZeroEnd(ri.ref, rr.valid_end);
    if (end > rr.valid_end) {
      const bool published = ri.ref.PlausibleTail(rr.committed_tail) &&
                             rr.valid_end < rr.committed_tail;
      out.drops.push_back(
          {rr.region, base + rr.valid_end, end - rr.valid_end,
           absl::StrCat(published ? "damaged log: " : "torn tail: ",
                        IsDamage(rr.stop) ? LogEndName(rr.stop)
                                          : "bytes past the end of the log"),
           published});
    }
  }
  return out;
}

}  // namespace

const char* LogEndName(LogEnd end) { return ScanStopName(ToScanStop(end)); }

bool IsDamage(LogEnd end) { return IsDamage(ToScanStop(end)); }

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

namespace {

// FailedPrecondition if a writer has the store at `path` open. A file that
// cannot be opened is left for the plan's open to report.
absl::Status CheckNoLiveWriters(const std::string& path) {
  int fd = -1;
  if (!io::Open(path, O_RDONLY | O_CLOEXEC, 0, &fd).ok())
    return absl::OkStatus();
  absl::StatusOr<bool> live =
      IsLockedByOther(fd, kLockWriters, LockKind::kExclusive);
  io::Close(fd);
  if (!live.ok()) return live.status();
  if (*live) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     ": writers have the store open; recover it when they "
                     "are gone (or use --dry-run)"));
  }
  return absl::OkStatus();
}

// Runs the recovery `plan` describes (a writable open in `mode`), then
// records in it what VerifyStore still finds. Reports its progress as
// `done` bytes past the plan's: `step` once the open is done, then `step`
// plus VerifyStore's.
absl::Status Apply(const std::string& path, RecoveryMode mode,
                   RecoverResult* plan, uint64_t step,
                   const std::function<void(uint64_t done)>& report) {
  // The index file is only a cache of the log as it was: drop it, so the
  // open below reads and verifies every record (as the plan did) and its
  // close writes an index of the recovered log.
  if (absl::Status s = io::UnlinkIfPresent(IndexPathFor(path)); !s.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot remove the index file: ", s.message()));
  }
  Options o;
  o.recovery_mode = mode;
  {
    absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
    if (!st.ok()) return st.status();
  }
  report(step);
  // Hold the result to what verify checks: recover succeeds only if
  // verify will then find nothing.
  absl::StatusOr<VerifyReport> check = VerifyStore(
      path, [&](const VerifyProgress& p) { report(step + p.bytes); });
  if (!check.ok()) return check.status();
  for (const VerifyIssue& i : check->issues) {
    plan->remaining_damage.push_back(
        absl::StrCat("offset ", i.file_offset, ": ", i.what));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RecoverResult> RecoverStore(const std::string& path,
                                           const RecoverOptions& options) {
  if (!options.dry_run) {
    if (absl::Status s = CheckNoLiveWriters(path); !s.ok()) return s;
  }
  absl::StatusOr<RecoverResult> plan = Plan(path, options.mode);
  if (!plan.ok()) return plan.status();
  plan->dry_run = options.dry_run;
  // Each step (the plan, the open, the check) counts as the file's bytes.
  struct stat sb;
  const uint64_t step =
      io::Stat(path, &sb).ok() ? static_cast<uint64_t>(sb.st_size) : 0;
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
    if (absl::Status s =
            Apply(path, options.mode, &*plan, step,
                  [&](uint64_t applied) { report(step + applied); });
        !s.ok())
      return s;
    report(done.bytes_total);
  }
  return plan;
}

}  // namespace recmap
