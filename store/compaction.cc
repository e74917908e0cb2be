// Offline compaction. Invariants:
// - The path names a complete store at every instant: the original until the
//   rename, the compacted copy after it. The copy is durable (data synced,
//   directory entry synced) and verified before the rename.
// - While compacting we hold kLockRecovery on the original, so no writer can
//   finish opening it; writers that were waiting reopen the path afterwards
//   (store_open.cc compares the inode under the same lock).
// - The copy keeps ids and sequence numbers, and is written in ascending
//   sequence order, so tailing readers of the copy see the same order.
#include "compaction.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "file_lock.h"
#include "file_ops.h"
#include "persisted_index.h"
#include "recmap/compaction.h"
#include "store_rep.h"

namespace recmap {

const char* CompactionStepName(CompactionStep step) {
  switch (step) {
    case CompactionStep::kLocked:
      return "locked";
    case CompactionStep::kCopied:
      return "copied";
    case CompactionStep::kSynced:
      return "synced";
    case CompactionStep::kDirSynced:
      return "dir-synced";
    case CompactionStep::kVerified:
      return "verified";
    case CompactionStep::kRenamed:
      return "renamed";
    case CompactionStep::kRenameSynced:
      return "rename-synced";
  }
  return "?";
}

namespace {

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Options to read a store that does not grow while we read it: reserving
// no more than the file (the handle's per-region table is sized by the
// reservation).
Options ReadOnlyOptions(const std::string& path) {
  Options o;
  o.read_only = true;
  o.max_file_size =
      std::max<uint64_t>(FileSize(path), kFirstRegionOffset + kMinRegionSize);
  return o;
}

// Pids of live region owners, for the refusal message. Best effort.
std::string LiveWriterPids(const std::string& path) {
  Options o = ReadOnlyOptions(path);
  absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(path, o);
  if (!s.ok()) return "";
  std::vector<uint32_t> pids;
  for (const RegionStats& r : (*s)->Stats().region_stats) {
    if (r.owner_alive && r.owner_pid != 0 && r.owner_pid != kScrubOwner)
      pids.push_back(r.owner_pid);
  }
  if (pids.empty()) return "";
  return absl::StrCat(" (writer pid ", absl::StrJoin(pids, ", "), ")");
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

absl::Status LockForCompaction(int fd, const std::string& path) {
  absl::StatusOr<bool> got = TryLock(fd, kLockCompaction, LockKind::kExclusive);
  if (!got.ok()) return got.status();
  if (!*got) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": another compaction of this store is running"));
  }
  if (absl::Status s = Lock(fd, kLockRecovery, LockKind::kExclusive); !s.ok())
    return s;
  absl::StatusOr<bool> writers =
      IsLockedByOther(fd, kLockWriters, LockKind::kExclusive);
  if (!writers.ok()) return writers.status();
  if (*writers) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": the store is open for writing by another process",
                     LiveWriterPids(path),
                     "; offline compaction needs every writer closed"));
  }
  return absl::OkStatus();
}

absl::Status VerifyCompacted(Store& original,
                             const std::vector<uint64_t>& copied, Store& copy) {
  const std::string& path = copy.info().path;
  StoreRep& src = *original.rep();
  // Distinct ids: the live set came from the original's index, one entry
  // per id, but the records it points at are what was copied.
  const StoreStats st = copy.Stats();
  if (st.live_records != copied.size() || st.tombstones != 0) {
    return absl::DataLossError(absl::StrCat(
        path, ": compacted copy holds ", st.live_records, " distinct ids (",
        st.tombstones, " deleted); expected ", copied.size(), " live records"));
  }
  // One pass over each log, in lockstep: the copy's records in log order
  // against the original's at the locations written, which are in
  // ascending sequence order. Both walks touch memory sequentially.
  size_t next = 0;
  absl::Status mismatch;
  absl::Status s = copy.ForEachRecord([&](const RecordView& c) {
    if (next == copied.size()) {
      mismatch = absl::DataLossError(absl::StrCat(
          path, ": compacted copy holds more than the ", copied.size(),
          " live records of the original; the first extra is id ", c.id,
          " (sequence ", c.sequence, ") at offset ", c.location.file_offset));
      return false;
    }
    const uint64_t packed = copied[next];
    const uint32_t region = static_cast<uint32_t>(packed >> 40);
    const uint64_t offset = (packed & ((uint64_t{1} << 40) - 1)) << 3;
    ScannedRecord o;
    if (region >= src.known_regions() ||
        CheckRecordAt(src.region(region).ref, offset,
                      src.region(region).ref.size, &o) != ScanStop::kLimit) {
      mismatch = absl::DataLossError(absl::StrCat(
          original.info().path,
          ": the original changed during compaction: the record copied from "
          "offset ",
          src.RegionOffset(region) + offset, " no longer validates"));
      return false;
    }
    const char* what = nullptr;
    if (c.type != RecordType::kPut) {
      what = "not a put";
    } else if (c.id != o.header.id) {
      what = "different id";
    } else if (c.sequence != o.header.sequence) {
      what = "different sequence";
    } else if (c.value != std::string_view(o.payload, o.header.length)) {
      what = "different value";
    }
    if (what != nullptr) {
      mismatch = absl::DataLossError(absl::StrCat(
          path, ": compacted copy differs from the original at id ",
          o.header.id, " (sequence ", o.header.sequence, "), live record ",
          next + 1, " of ", copied.size(), ": ", what, " (copy: id ", c.id,
          ", sequence ", c.sequence, ", offset ", c.location.file_offset, ")"));
      return false;
    }
    ++next;
    return true;
  });
  if (!s.ok()) return s;
  if (!mismatch.ok()) return mismatch;
  if (next != copied.size()) {
    return absl::DataLossError(absl::StrCat(path, ": compacted copy holds ",
                                            next, " records; expected ",
                                            copied.size(), " live records"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CompactionResult> Compact(const std::string& path,
                                         const CompactionOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto step = [&](CompactionStep k) {
    if (options.step_hook) options.step_hook(k);
  };
  Fd lock_fd;
  if (absl::Status s = io::Open(path, O_RDWR, 0, &lock_fd.fd); !s.ok())
    return s;
  if (absl::Status s = LockForCompaction(lock_fd.fd, path); !s.ok()) return s;
  step(CompactionStep::kLocked);

  Options src_opts = ReadOnlyOptions(path);
  src_opts.recovery_mode = options.recovery_mode;
  absl::StatusOr<std::unique_ptr<Store>> src = Store::Open(path, src_opts);
  if (!src.ok()) return src.status();
  const StoreStats before = (*src)->Stats();

  const bool replace = options.output.empty();
  const std::string out = replace ? path + ".compact-tmp" : options.output;
  if (replace && ::unlink(out.c_str()) != 0 && errno != ENOENT) {
    return io::ErrnoStatus(errno, "unlink stale", out);
  }
  Options dst_opts;
  dst_opts.create_if_missing = true;
  dst_opts.error_if_exists = true;
  // An index file written at its close would be named after the temporary
  // path and outlive the rename; the new store writes its own at its first
  // clean close.
  dst_opts.persist_index = false;
  dst_opts.region_size =
      options.region_size != 0 ? options.region_size : before.region_size;
  // Room for every live record, even re-packed into smaller regions with
  // their per-region overhead and end-of-region waste.
  dst_opts.max_file_size =
      kFirstRegionOffset +
      4 * (before.file_size + before.live_payload_bytes +
           32 * before.live_records + 2 * dst_opts.region_size);
  absl::StatusOr<std::unique_ptr<Store>> dst = Store::Open(out, dst_opts);
  if (!dst.ok()) return dst.status();
  // From here on, a failure removes the partial copy.
  auto fail = [&](absl::Status s) -> absl::Status {
    dst->reset();
    ::unlink(out.c_str());
    return s;
  };

  // Where each copied record is in the original, in the order written
  // (ascending sequence): what the verification compares the copy with.
  std::vector<uint64_t> copied;
  CompactionProgress prog;
  prog.records_total = before.live_records;
  prog.bytes_total = before.live_payload_bytes;
  {
    absl::StatusOr<std::unique_ptr<Writer>> w = (*dst)->NewWriter();
    if (!w.ok()) return fail(w.status());
    StoreRep* rep = (*dst)->rep();
    StoreRep* src_rep = (*src)->rep();
    copied.reserve(before.live_records);
    absl::Status werr;
    absl::Status s = (*src)->ForEachLive([&](const RecordView& v) {
      werr = rep->WriteWithSequence(**w, RecordType::kPut, v.id, v.sequence,
                                    v.value);
      if (!werr.ok()) return false;
      copied.push_back(StoreRep::Pack(
          v.location.region,
          v.location.file_offset - src_rep->RegionOffset(v.location.region)));
      prog.records_done++;
      prog.bytes_done += v.value.size();
      if (options.progress && prog.records_done % 4096 == 0)
        options.progress(prog);
      return true;
    });
    if (!s.ok()) return fail(s);
    if (!werr.ok()) return fail(werr);
  }
  if (options.progress) options.progress(prog);
  step(CompactionStep::kCopied);

  if (absl::Status s = (*dst)->Sync(); !s.ok()) return fail(s);
  dst->reset();
  {
    // The data are synced; sync once more through a fresh descriptor so the
    // file's size is durable whatever the store did last.
    Fd f;
    if (absl::Status s = io::Open(out, O_RDONLY, 0, &f.fd); !s.ok())
      return fail(s);
    if (absl::Status s = io::Fdatasync(f.fd, out); !s.ok()) return fail(s);
  }
  step(CompactionStep::kSynced);
  if (absl::Status s = io::SyncParentDir(out); !s.ok()) return fail(s);
  step(CompactionStep::kDirSynced);

  {
    Options vopts = ReadOnlyOptions(out);
    vopts.recovery_mode = RecoveryMode::kAbsoluteConsistency;
    absl::StatusOr<std::unique_ptr<Store>> copy = Store::Open(out, vopts);
    if (!copy.ok()) return fail(copy.status());
    if (absl::Status s = VerifyCompacted(**src, copied, **copy); !s.ok())
      return fail(s);
  }
  step(CompactionStep::kVerified);

  CompactionResult r;
  r.path = replace ? path : out;
  r.bytes_before = before.file_size;
  r.bytes_after = FileSize(out);
  r.records_before = before.records;
  r.records_kept = prog.records_done;
  r.records_dropped = before.records - prog.records_done;
  r.payload_bytes = prog.bytes_done;
  src->reset();
  if (replace) {
    if (::rename(out.c_str(), path.c_str()) != 0) {
      return fail(io::ErrnoStatus(errno, "rename " + out + " to", path));
    }
    step(CompactionStep::kRenamed);
    // The old generation's index file names the old uuid: it would only be
    // rejected (and rewritten) at the next close. A crash before this
    // unlink leaves exactly that, which is harmless.
    if (::unlink(IndexPathFor(path).c_str()) != 0 && errno != ENOENT) {
      return io::ErrnoStatus(errno, "unlink stale index", IndexPathFor(path));
    }
    // The compacted store is in place; a failure to sync the directory
    // leaves either generation complete, but the caller must know.
    if (absl::Status s = io::SyncParentDir(path); !s.ok()) return s;
    step(CompactionStep::kRenameSynced);
  }
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return r;
}

}  // namespace recmap
