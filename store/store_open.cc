// Opening a store: creating the file, validating its header, mapping it and
// recovering each region's log. See docs/DESIGN.md, "Recovery".
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "coding.h"
#include "file_lock.h"
#include "file_ops.h"
#include "store_peer.h"
#include "store_rep.h"

namespace recmap {
namespace {

absl::Status ValidateOptions(const Options& o) {
  if (o.region_size < kMinRegionSize || o.region_size > kMaxRegionSize ||
      o.region_size % kPageSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("region_size ", o.region_size,
                     " must be a multiple of 4096 between 16 KiB and 4 GiB"));
  }
  if (o.max_file_size < kFirstRegionOffset + kMinRegionSize) {
    return absl::InvalidArgumentError("max_file_size is too small");
  }
  if (o.read_only && o.create_if_missing) {
    return absl::InvalidArgumentError(
        "read_only and create_if_missing are exclusive");
  }
  return absl::OkStatus();
}

void RandomBytes(void* dst, size_t n) {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    ssize_t r = ::getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // getrandom cannot fail on Linux >= 3.17 short of a bad buffer; fall
      // back to the clock so that uuids still differ.
      uint64_t t = std::chrono::steady_clock::now().time_since_epoch().count();
      std::memcpy(p, &t, std::min(n, sizeof(t)));
      r = static_cast<ssize_t>(std::min(n, sizeof(t)));
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
}

struct FdCloser {
  int* fd;
  bool armed = true;
  ~FdCloser() {
    if (armed && *fd >= 0) {
      io::Close(*fd);
      *fd = -1;
    }
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<StoreRep>> StoreRep::Open(
    const std::string& path, const Options& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  std::unique_ptr<StoreRep> rep(new StoreRep());
  rep->path_ = path;
  rep->options_ = options;
  bool created = false;
  if (absl::Status s = rep->OpenFile(&created); !s.ok()) return s;

  const bool writable = !options.read_only;
  // Decide whether anyone is writing, before looking at the file: the
  // first writable opener (the writers lock is free) owns the shared page
  // and recovers every region, and from the moment it holds the writers
  // lock nobody else can be appending. A later opener must instead take
  // the file as the live writers publish it.
  bool full = false;
  if (writable) {
    // Serialise initialisation and recovery with other openers. Compaction
    // holds this lock while it replaces the file by rename: a writer that
    // waited for it may hold the replaced file, so it opens the path again.
    for (int attempt = 0;; ++attempt) {
      if (absl::Status s = Lock(rep->fd_, kLockRecovery, LockKind::kExclusive);
          !s.ok())
        return s;
      struct stat by_fd, by_path;
      if (absl::Status s = io::Fstat(rep->fd_, path, &by_fd); !s.ok())
        return s;
      if (io::Stat(path, &by_path).ok() &&
          by_path.st_ino == by_fd.st_ino && by_path.st_dev == by_fd.st_dev)
        break;
      if (attempt == 100) {
        return absl::UnavailableError(
            absl::StrCat(path, ": the file keeps being replaced"));
      }
      io::Close(rep->fd_);
      rep->fd_ = -1;
      bool again = false;
      if (absl::Status s = rep->OpenFile(&again); !s.ok()) return s;
      created = created || again;
    }
    absl::StatusOr<bool> first =
        TryLock(rep->fd_, kLockWriters, LockKind::kExclusive);
    if (!first.ok()) return first.status();
    full = *first;
  } else {
    absl::StatusOr<bool> live =
        IsLockedByOther(rep->fd_, kLockWriters, LockKind::kExclusive);
    if (!live.ok()) return live.status();
    full = !*live;
  }
  rep->recovery_.mode = options.recovery_mode;
  rep->recovery_.full_recovery = full;

  struct stat st;
  if (absl::Status s = io::Fstat(rep->fd_, path, &st); !s.ok()) return s;
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size == 0 && writable && options.create_if_missing) {
    if (absl::Status s = rep->InitializeNewFile(); !s.ok()) {
      if (created) (void)io::Unlink(path);
      return s;
    }
    file_size = kFirstRegionOffset;
  }
  if (absl::Status s = rep->ReadHeader(file_size); !s.ok()) return s;

  const uint64_t rs = rep->header_.region_size;
  rep->recovery_.trailing_bytes = (file_size - kFirstRegionOffset) % rs;
  if (rep->recovery_.trailing_bytes != 0 && full &&
      options.recovery_mode == RecoveryMode::kAbsoluteConsistency) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", rep->recovery_.trailing_bytes,
                     " bytes past the last whole region at offset ",
                     file_size - rep->recovery_.trailing_bytes));
  }
  if (rep->recovery_.trailing_bytes != 0 && full && writable) {
    // A last region cut short (a truncated copy, a file system that lost
    // the end of the file): give it back its zero tail so that the records
    // in its surviving part are recovered like any torn log.
    const uint64_t missing = rs - rep->recovery_.trailing_bytes;
    if (absl::Status s = io::Allocate(rep->fd_, file_size, missing, path);
        !s.ok())
      return s;
    file_size += missing;
  }
  if (full && writable) {
    // A temporary index file left by a handle that died building it (no
    // other writable handle is open, so none is building one now): its
    // space may be what a full disk lacks.
    (void)io::Unlink(IndexPathFor(path) + ".tmp");
    // Recovery stores into the header pages and each region's state page
    // through the mapping: those pages are backed by blocks first, so that
    // a full disk is this error and never a SIGBUS (blocks already
    // allocated, the usual case, need no free space). A region's log is
    // backed by whoever stores into it next (ScrubTail, a Writer taking
    // it, FormatRegion).
    if (absl::Status s = io::Allocate(rep->fd_, 0, kFirstRegionOffset, path);
        !s.ok())
      return s;
    for (uint64_t off = kFirstRegionOffset; off + rs <= file_size; off += rs) {
      if (absl::Status s = io::Allocate(rep->fd_, off, kRegionDataOffset, path);
          !s.ok())
        return s;
    }
  }
  // Read-only, with no live writer, a cut last region cannot be given back
  // its zero tail in the file: map zero pages over its missing part instead
  // (below), which is the same view, and leaves the file alone.
  uint64_t cut_end = 0;
  if (rep->recovery_.trailing_bytes != 0 && full && !writable) {
    cut_end = file_size + (rs - rep->recovery_.trailing_bytes);
  }
  const uint64_t reserve =
      std::max({options.max_file_size, file_size, cut_end});
  rep->max_regions_ = static_cast<uint32_t>(
      std::min<uint64_t>((reserve - kFirstRegionOffset) / rs, 1u << 24));
  rep->regions_.Init(rep->max_regions_);
  if (absl::Status s = rep->map_.Reserve(reserve); !s.ok()) return s;
  if (absl::Status s = rep->map_.EnsureMapped(rep->fd_, kFirstRegionOffset,
                                              options.read_only, path);
      !s.ok())
    return s;
  uint32_t regions = static_cast<uint32_t>(std::min<uint64_t>(
      (std::max(file_size, cut_end) - kFirstRegionOffset) / rs,
      rep->max_regions_));
  if (cut_end != 0 && regions * rs + kFirstRegionOffset == cut_end) {
    // Pages wholly past the end of the file would raise SIGBUS; the last,
    // partial one reads as zeros past the end.
    if (absl::Status s = rep->map_.EnsureMapped(rep->fd_, file_size,
                                                /*read_only=*/true, path);
        !s.ok())
      return s;
    if (absl::Status s = rep->map_.MapZeros(cut_end, path); !s.ok()) return s;
    rep->recovery_.cut_region = regions - 1;
  }
  if (!full) {
    // Live writers: only regions they have published (formatted, synced)
    // exist; one being added right now is picked up by LoadNewRegions.
    regions = static_cast<uint32_t>(std::min<uint64_t>(
        regions, rep->shared_region_count().load(std::memory_order_acquire)));
  }
  if (absl::Status s = rep->map_.EnsureMapped(
          rep->fd_, kFirstRegionOffset + regions * rs, options.read_only, path);
      !s.ok())
    return s;
  rep->regions_.Ensure(regions);
  for (uint32_t i = 0; i < regions; ++i) {
    bool last = i + 1 == regions;
    if (absl::Status s = rep->LoadRegionHeader(i, last && full); !s.ok())
      return s;
  }
  rep->known_regions_.store(regions, std::memory_order_release);
  if (full && writable) {
    rep->shared_region_count().store(regions, std::memory_order_release);
  }
  rep->AdoptPersistedIndex();
  if (absl::Status s = rep->Recover(full); !s.ok()) return s;
  if (rep->recovery_.cut_region >= 0 &&
      rep->recovery_.trailing_bytes < kRegionDataOffset) {
    // Cut inside its header pages: the region's committed tail is gone
    // with its whole log, so nothing says whether it held records -- unless
    // what is left is zeros (a region never formatted).
    RegionInfo& ri = rep->regions_[regions - 1];
    bool zeros = true;
    for (uint64_t k = 0; zeros && k < rep->recovery_.trailing_bytes; ++k)
      zeros = ri.ref.base[k] == 0;
    if (!zeros) {
      ri.unreadable_bytes = rs - rep->recovery_.trailing_bytes;
      rep->recovery_.unreadable_bytes += ri.unreadable_bytes;
      rep->recovery_.unreadable.push_back(absl::StrCat(
          path, ": region ", regions - 1, ": the file is cut short at offset ",
          file_size,
          ", inside the region's header pages: its committed "
          "tail and its whole log are missing, and any records in it cannot "
          "be read"));
    }
  }

  if (writable) {
    // Become a registered writer before letting the next opener in.
    if (absl::Status s = Lock(rep->fd_, kLockWriters, LockKind::kShared);
        !s.ok())
      return s;
    if (absl::Status s = Unlock(rep->fd_, kLockRecovery); !s.ok()) return s;
  }
  rep->info_.path = path;
  rep->info_.format_version = rep->header_.format_version;
  rep->info_.uuid = rep->header_.uuid;
  rep->info_.region_size = rs;
  rep->info_.created_unix_nanos = rep->header_.created_unix_nanos;
  rep->info_.read_only = options.read_only;
  if (writable && options.persist_index &&
      options.persist_index_in_background &&
      options.recovery_mode == RecoveryMode::kTolerateTornTail) {
    StoreRep* r = rep.get();
    // Woken when a region seals, and then every kIndexPassInterval, so
    // that the log a close or a crash leaves uncovered stays small.
    rep->index_task_ = std::make_unique<BackgroundTask>(
        [r](const std::atomic<bool>& stop) { r->PersistIndexPass(stop); },
        kIndexPassInterval);
    // A store reopened with much of its log uncovered (this open scanned
    // it) gets it covered now, not at the next seal.
    if (rep->recovery_.scanned_records >= options.persist_index_min_records &&
        rep->recovery_.scanned_records > 0)
      rep->index_task_->Notify();
  }
  rep->opened_ = true;
  return rep;
}

absl::Status StoreRep::OpenFile(bool* created) {
  struct stat st;
  if (io::Stat(path_, &st).ok()) {
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": is a directory, not a store file"));
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": not a regular file"));
    }
    if (options_.create_if_missing && options_.error_if_exists) {
      return absl::AlreadyExistsError(absl::StrCat(path_, ": already exists"));
    }
  }
  int flags = options_.read_only ? O_RDONLY : O_RDWR;
  if (!options_.read_only && options_.create_if_missing) flags |= O_CREAT;
  if (options_.error_if_exists) flags |= O_EXCL;
  // Learn whether this call created the file, so a failed initialisation
  // does not leave an empty file behind.
  absl::Status exists = io::Stat(path_, &st);
  if (!exists.ok() && !absl::IsNotFound(exists)) return exists;
  const bool existed = exists.ok();
  absl::Status s = io::Open(path_, flags, 0644, &fd_);
  if (!s.ok()) {
    // Only a missing file is said so; a symlink loop, a name too long or a
    // missing directory keep the system's reason.
    if (absl::IsNotFound(s) && errno == ENOENT && !options_.create_if_missing) {
      return absl::NotFoundError(absl::StrCat(
          path_, ": no such store file (create_if_missing is off)"));
    }
    if (absl::IsResourceExhausted(s) || absl::IsInternal(s)) {
      if (errno == EEXIST) {
        return absl::AlreadyExistsError(
            absl::StrCat(path_, ": already exists"));
      }
    }
    return s;
  }
  *created = !existed;
  if (*created) return io::SyncParentDir(path_);
  return absl::OkStatus();
}

absl::Status StoreRep::InitializeNewFile() {
  std::string page(kFirstRegionOffset, '\0');
  FileHeader h;
  h.region_size = options_.region_size;
  RandomBytes(h.uuid.data(), h.uuid.size());
  h.created_unix_nanos = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  h.EncodeTo(page.data());
  EncodeFixed64(page.data() + kSharedPageOffset + kSharedNextSequence, 1);
  if (absl::Status s = io::Allocate(fd_, 0, kFirstRegionOffset, path_); !s.ok())
    return s;
  if (absl::Status s = io::Write(fd_, 0, page.data(), page.size(), path_);
      !s.ok())
    return s;
  if (absl::Status s = io::Fdatasync(fd_, path_); !s.ok()) return s;
  return io::SyncParentDir(path_);
}

absl::Status StoreRep::ReadHeader(uint64_t file_size) {
  if (file_size == 0) {
    return absl::DataLossError(
        absl::StrCat(path_, ": empty file, not a recmap store"));
  }
  char buf[FileHeader::kEncodedSize];
  size_t want = std::min<uint64_t>(file_size, sizeof(buf));
  size_t r = 0;
  if (absl::Status s = io::Read(fd_, 0, buf, want, path_, &r); !s.ok())
    return s;
  absl::Status s = header_.DecodeFrom(buf, r);
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path_, ": ", s.message()));
  }
  if (file_size < kFirstRegionOffset) {
    return absl::DataLossError(
        absl::StrCat(path_, ": truncated file of ", file_size,
                     " bytes: the header pages need ", kFirstRegionOffset));
  }
  return absl::OkStatus();
}

absl::Status StoreRep::LoadRegionHeader(uint32_t i, bool allow_unformatted) {
  RegionInfo& ri = regions_[i];
  ri.ref.base = map_.base() + RegionOffset(i);
  ri.ref.size = header_.region_size;
  ri.ref.index = i;
  RegionHeader rh;
  absl::Status s = rh.DecodeFrom(ri.ref.base, kPageSize);
  if (s.ok() && (rh.index != i || rh.file_uuid != header_.uuid ||
                 rh.region_size != header_.region_size)) {
    s = absl::DataLossError("region header belongs to another region or file");
  }
  if (s.ok()) {
    ri.formatted = true;
    ri.ref.seed = RegionSeed(header_.uuid, i, rh.epoch);
    return absl::OkStatus();
  }
  ri.formatted = false;
  // Only the last region can be caught between growing the file and syncing
  // its header, and then nothing was ever written into its log (writers
  // start after the header is synced): its first record slot is zero.
  // Anywhere else, or with records behind it, an unreadable header is
  // damage.
  bool log_empty = true;
  for (uint64_t k = 0; k < kRecordHeaderSize; ++k) {
    log_empty = log_empty && ri.ref.base[kRegionDataOffset + k] == 0;
  }
  const bool tolerate =
      allow_unformatted && log_empty &&
      options_.recovery_mode != RecoveryMode::kAbsoluteConsistency;
  if (tolerate || options_.recovery_mode == RecoveryMode::kSalvage) {
    ri.damaged = !tolerate;
    ri.damage = std::string(s.message());
    return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrCat(path_, ": region ", i,
                                          " header at offset ", RegionOffset(i),
                                          ": ", s.message()));
}

absl::Status StoreRep::Recover(bool full) {
  uint64_t max_seq = 0;
  const uint32_t n = known_regions();
  for (uint32_t i = 0; i < n; ++i) {
    if (absl::Status s = RecoverRegion(i, full, &max_seq); !s.ok()) return s;
  }
  absl::MutexLock lock(&index_mu_);
  indexed_regions_ = n;
  for (uint32_t i = 0; i < n; ++i) {
    if (!regions_[i].done) open_regions_.push_back(i);
  }
  local_next_sequence_ = max_seq + 1;
  if (!read_only()) {
    auto seq = next_sequence();
    if (full) {
      seq.store(max_seq + 1, std::memory_order_release);
    } else {
      uint64_t cur = seq.load(std::memory_order_acquire);
      while (cur <= max_seq &&
             !seq.compare_exchange_weak(cur, max_seq + 1,
                                        std::memory_order_acq_rel)) {
      }
    }
  }
  return absl::OkStatus();
}

absl::Status StoreRep::RecoverRegion(uint32_t i, bool full, uint64_t* max_seq) {
  RegionInfo& ri = regions_[i];
  RegionRecovery rr;
  rr.region = i;
  if (!ri.formatted) {
    rr.header_damaged = ri.damaged;
    if (!ri.damaged && full && !read_only()) {
      // A trailing region whose header never reached the disk: no record in
      // it can have been published. Give it a fresh epoch.
      if (absl::Status s = FormatRegion(i, /*fresh=*/false); !s.ok()) return s;
      rr.reformatted = true;
      rr.valid_end = rr.committed_tail = kRegionDataOffset;
    }
    recovery_.regions.push_back(rr);
    return absl::OkStatus();
  }
  const RegionRef& r = ri.ref;
  const RecoveryMode mode = options_.recovery_mode;
  // The durable tail first: a live writer may append and Sync() between
  // the two loads, and only in this order is durable <= committed (the
  // durable tail never passes the committed tail, and neither goes back).
  rr.durable_tail = r.DurableTail();
  rr.committed_tail = r.committed_tail().load(std::memory_order_acquire);
  const bool tail_ok = r.PlausibleTail(rr.committed_tail);
  // How far to read: with a live writer, exactly its published tail; when
  // no writer is live, every record that validates (an unpublished but
  // complete record, or records whose tail update was lost in a power cut,
  // are kept) -- except in absolute mode, which holds the log to its tail.
  uint64_t limit = r.size;
  const bool to_tail = !full || mode == RecoveryMode::kAbsoluteConsistency;
  if (to_tail) {
    limit = tail_ok ? rr.committed_tail : kRegionDataOffset;
    if (!tail_ok && mode == RecoveryMode::kAbsoluteConsistency) {
      return absl::DataLossError(
          absl::StrCat(path_, ": region ", i, " has an invalid committed tail ",
                       rr.committed_tail, " (state page at offset ",
                       RegionOffset(i) + kRegionStatePageOffset, ")"));
    }
  }
  const bool salvage = mode == RecoveryMode::kSalvage;
  // A region the persisted index covers is read from its covered tail (the
  // index holds the records before it); AdoptPersistedIndex checked that
  // this log is the one it describes.
  uint64_t from = kRegionDataOffset;
  uint64_t covered_records = 0;
  if (i < base_regions_) {
    const IndexedRegion& g = base_->regions()[i];
    from = std::min(g.tail, limit);
    covered_records = g.records;
    absl::MutexLock lock(&index_mu_);
    ri.records = g.records;
    ri.fill = g.fill;
    ri.payload_bytes = g.payload_bytes;
    *max_seq = std::max(*max_seq, base_->max_sequence());
  }
  ScanResult res;
  {
    absl::MutexLock lock(&index_mu_);
    res = ScanRegion(r, from, limit, salvage,
                     [&](const ScannedRecord& rec) { IndexRecord(i, rec); });
  }
  rr.valid_end = res.end;
  rr.records = covered_records + res.records;
  recovery_.scanned_records += res.records;
  rr.stop = ToLogEnd(salvage && res.first_damage != 0 ? res.first_damage_kind
                                                      : res.stop);
  rr.stop_offset =
      salvage && res.first_damage != 0 ? res.first_damage : res.end;
  rr.skipped_bytes = res.skipped_bytes;
  *max_seq = std::max(*max_seq, res.max_sequence);

  // Reading to a committed tail (a live writer's, or in absolute mode),
  // the log must reach it: a zero header before it is damage too.
  const bool short_of_tail = to_tail && res.end < limit;
  // Whatever stopped the scan (zeros too: a lost page reads as zeros), a log
  // ending below the durable tail has lost records a Sync() promised.
  const bool damaged = IsDamage(res.stop) || res.first_damage != 0 ||
                       short_of_tail || res.end < rr.durable_tail;
  if (damaged && !salvage) {
    const bool below_floor = res.end < rr.durable_tail;
    const bool below_tail = !full && res.end < limit;
    if (mode == RecoveryMode::kAbsoluteConsistency || below_floor ||
        below_tail) {
      return absl::DataLossError(absl::StrCat(
          path_, ": region ", i, ": ", ScanStopName(res.stop),
          " at file offset ", RegionOffset(i) + res.end,
          below_floor ? absl::StrCat(", below the durable tail at ",
                                     RegionOffset(i) + rr.durable_tail)
                      : std::string(),
          below_tail ? " (below a live writer's committed tail)" : ""));
    }
  }
  if (full && read_only() && tail_ok && res.end < rr.committed_tail) {
    // A writable open would cut the log here and say nothing: these
    // records were published, and this handle cannot return them.
    const bool cut = static_cast<int64_t>(i) == recovery_.cut_region &&
                     rr.committed_tail > recovery_.trailing_bytes;
    ri.unreadable_bytes = rr.committed_tail - res.end;
    recovery_.unreadable_bytes += ri.unreadable_bytes;
    recovery_.unreadable.push_back(absl::StrCat(
        path_, ": region ", i, ": ",
        cut ? absl::StrCat("the file is cut short at offset ",
                           RegionOffset(i) + recovery_.trailing_bytes)
            : absl::StrCat("the log ends (", ScanStopName(res.stop),
                           ") at file offset ", RegionOffset(i) + res.end),
        ", below the committed tail at file offset ",
        RegionOffset(i) + rr.committed_tail, ": ", rr.committed_tail - res.end,
        " bytes of published records cannot be read"));
  }
  ri.indexed_end.store(res.end, std::memory_order_release);
  if (full && !read_only()) {
    // The log from here on is res.end; anything past it is garbage, an
    // unfinished record or records lost before it, and must be scrubbed
    // before anyone appends (the next claimer does it). When the cut is at
    // damage, valid records may follow it: zero them now, or a later
    // salvage would bring back records this recovery declared lost, beside
    // new records that reuse their sequence numbers.
    // The same for any non-zero bytes left past the end (a record cut off
    // by zeros, a torn record): zero them now rather than at the next claim,
    // which never comes for a sealed region.
    bool stale = IsDamage(res.stop);
    for (uint64_t p = res.end; !stale && p + 8 <= r.size; p += 8) {
      stale = DecodeFixed64(r.base + p) != 0;
    }
    if (stale) {
      if (absl::Status s = ScrubTail(i, res.end); !s.ok()) return s;
    }
    if (rr.committed_tail != res.end) {
      r.committed_tail().store(res.end, std::memory_order_release);
    }
    if (!r.sealed() && r.owner_pid().load(std::memory_order_relaxed) == 0) {
      r.owner_pid().store(kScrubOwner, std::memory_order_release);
    }
    if (r.DurableTail() > res.end) r.SetDurableTail(res.end);
  }
  ri.done = r.sealed() &&
            res.end >= r.committed_tail().load(std::memory_order_acquire);
  recovery_.regions.push_back(rr);
  return absl::OkStatus();
}

}  // namespace recmap
