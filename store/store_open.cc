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
#include "log_recovery.h"
#include "store_rep.h"
#include "tuning.h"

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
  absl::StatusOr<bool> full = rep->TakeOpenLocks(&created);
  if (!full.ok()) return full.status();
  rep->recovery_.mode = options.recovery_mode;
  rep->recovery_.full_recovery = *full;
  rep->durability_.Init(rep->fd_, &rep->path_);
  absl::StatusOr<uint64_t> file_size = rep->ReadOrCreateHeader(created);
  if (!file_size.ok()) return file_size.status();
  if (absl::Status s = rep->PrepareFile(*full, &*file_size); !s.ok()) return s;
  absl::StatusOr<uint32_t> regions = rep->MapRegions(*full, *file_size);
  if (!regions.ok()) return regions.status();
  StoreIndex::Config index;
  index.path = &rep->path_;
  index.verify_checksums_on_read = options.verify_checksums_on_read;
  index.regions = &rep->regions_;
  index.shared_page = rep->shared_page();
  rep->index_.Init(index);
  rep->AdoptPersistedIndex();
  if (absl::Status s = rep->Recover(*full); !s.ok()) return s;
  rep->ReportCutHeaderPages(*regions, *file_size);
  if (absl::Status s = rep->FinishOpen(); !s.ok()) return s;
  rep->opened_ = true;
  return rep;
}

absl::StatusOr<bool> StoreRep::TakeOpenLocks(bool* created) {
  // Decide whether anyone is writing, before looking at the file: the
  // first writable opener (the writers lock is free) owns the shared page
  // and recovers every region, and from the moment it holds the writers
  // lock nobody else can be appending. A later opener must instead take
  // the file as the live writers publish it.
  if (read_only()) {
    absl::StatusOr<bool> live =
        IsLockedByOther(fd_, kLockWriters, LockKind::kExclusive);
    if (!live.ok()) return live.status();
    return !*live;
  }
  // Serialise initialisation and recovery with other openers. Compaction
  // holds this lock while it replaces the file by rename: a writer that
  // waited for it may hold the replaced file, so it opens the path again.
  for (int attempt = 0;; ++attempt) {
    if (absl::Status s = Lock(fd_, kLockRecovery, LockKind::kExclusive);
        !s.ok())
      return s;
    struct stat by_fd, by_path;
    if (absl::Status s = io::Fstat(fd_, path_, &by_fd); !s.ok()) return s;
    if (io::Stat(path_, &by_path).ok() && by_path.st_ino == by_fd.st_ino &&
        by_path.st_dev == by_fd.st_dev)
      break;
    if (attempt == 100) {
      return absl::UnavailableError(
          absl::StrCat(path_, ": the file keeps being replaced"));
    }
    io::Close(fd_);
    fd_ = -1;
    bool again = false;
    if (absl::Status s = OpenFile(&again); !s.ok()) return s;
    *created = *created || again;
  }
  return TryLock(fd_, kLockWriters, LockKind::kExclusive);
}

absl::StatusOr<uint64_t> StoreRep::ReadOrCreateHeader(bool created) {
  struct stat st;
  if (absl::Status s = io::Fstat(fd_, path_, &st); !s.ok()) return s;
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size == 0 && !read_only() && options_.create_if_missing) {
    if (absl::Status s = InitializeNewFile(); !s.ok()) {
      if (created) (void)io::Unlink(path_);
      return s;
    }
    file_size = kFirstRegionOffset;
  }
  if (absl::Status s = ReadHeader(file_size); !s.ok()) return s;
  recovery_.trailing_bytes =
      (file_size - kFirstRegionOffset) % header_.region_size;
  return file_size;
}

absl::Status StoreRep::PrepareFile(bool full, uint64_t* file_size) {
  const uint64_t rs = header_.region_size;
  const uint64_t trailing = recovery_.trailing_bytes;
  if (trailing != 0 && full &&
      options_.recovery_mode == RecoveryMode::kAbsoluteConsistency) {
    return absl::DataLossError(absl::StrCat(
        path_, ": ", trailing, " bytes past the last whole region at offset ",
        *file_size - trailing));
  }
  if (!full || read_only()) return absl::OkStatus();
  if (trailing != 0) {
    // A last region cut short (a truncated copy, a file system that lost
    // the end of the file): give it back its zero tail so that the records
    // in its surviving part are recovered like any torn log.
    const uint64_t missing = rs - trailing;
    if (absl::Status s = io::Allocate(fd_, *file_size, missing, path_); !s.ok())
      return s;
    *file_size += missing;
  }
  // A temporary index file left by a handle that died building it (no
  // other writable handle is open, so none is building one now): its
  // space may be what a full disk lacks.
  (void)io::Unlink(IndexPathFor(path_) + ".tmp");
  // Recovery stores into the header pages and each region's state page
  // through the mapping: those pages are backed by blocks first, so that
  // a full disk is this error and never a SIGBUS (blocks already
  // allocated, the usual case, need no free space). A region's log is
  // backed by whoever stores into it next (ScrubTail, a Writer taking
  // it, Format).
  if (absl::Status s = io::Allocate(fd_, 0, kFirstRegionOffset, path_); !s.ok())
    return s;
  for (uint64_t off = kFirstRegionOffset; off + rs <= *file_size; off += rs) {
    if (absl::Status s = io::Allocate(fd_, off, kRegionDataOffset, path_);
        !s.ok())
      return s;
  }
  return absl::OkStatus();
}

void StoreRep::InitRegions(uint64_t reserve) {
  RegionSet::Config config;
  config.map = &map_;
  config.fd = fd_;
  config.path = &path_;
  config.header = &header_;
  config.read_only = read_only();
  config.recovery_mode = options_.recovery_mode;
  config.durability = &durability_;
  // A location packs the region number into 24 bits (location.h).
  regions_.Init(config, static_cast<uint32_t>(std::min<uint64_t>(
                            (reserve - kFirstRegionOffset) / region_size(),
                            uint64_t{1} << (64 - kLocationRegionShift))));
}

absl::StatusOr<uint32_t> StoreRep::MapRegions(bool full, uint64_t file_size) {
  const uint64_t rs = header_.region_size;
  // Read-only, with no live writer, a cut last region cannot be given back
  // its zero tail in the file: map zero pages over its missing part instead
  // (below), which is the same view, and leaves the file alone.
  uint64_t cut_end = 0;
  if (recovery_.trailing_bytes != 0 && full && read_only()) {
    cut_end = file_size + (rs - recovery_.trailing_bytes);
  }
  const uint64_t reserve =
      std::max({options_.max_file_size, file_size, cut_end});
  InitRegions(reserve);
  if (absl::Status s = map_.Reserve(reserve); !s.ok()) return s;
  if (absl::Status s =
          map_.EnsureMapped(fd_, kFirstRegionOffset, read_only(), path_);
      !s.ok())
    return s;
  uint32_t regions = static_cast<uint32_t>(std::min<uint64_t>(
      (std::max(file_size, cut_end) - kFirstRegionOffset) / rs,
      regions_.max_regions()));
  if (cut_end != 0 && regions * rs + kFirstRegionOffset == cut_end) {
    // Pages wholly past the end of the file would raise SIGBUS; the last,
    // partial one reads as zeros past the end.
    if (absl::Status s =
            map_.EnsureMapped(fd_, file_size, /*read_only=*/true, path_);
        !s.ok())
      return s;
    if (absl::Status s = map_.MapZeros(cut_end, path_); !s.ok()) return s;
    recovery_.cut_region = regions - 1;
  }
  if (!full) {
    // Live writers: only regions they have published (formatted, synced)
    // exist; one being added right now is picked up by LoadNewRegions.
    regions = static_cast<uint32_t>(std::min<uint64_t>(
        regions, shared_region_count().load(std::memory_order_acquire)));
  }
  if (absl::Status s = map_.EnsureMapped(fd_, kFirstRegionOffset + regions * rs,
                                         read_only(), path_);
      !s.ok())
    return s;
  regions_.EnsureEntries(regions);
  for (uint32_t i = 0; i < regions; ++i) {
    const bool last = i + 1 == regions;
    if (absl::Status s = regions_.LoadHeader(i, last && full); !s.ok())
      return s;
  }
  regions_.SetKnown(regions);
  if (full && !read_only()) {
    shared_region_count().store(regions, std::memory_order_release);
  }
  return regions;
}

void StoreRep::ReportCutHeaderPages(uint32_t regions, uint64_t file_size) {
  if (recovery_.cut_region < 0 || recovery_.trailing_bytes >= kRegionDataOffset)
    return;
  // Cut inside its header pages: the region's committed tail is gone with
  // its whole log, so nothing says whether it held records -- unless what
  // is left is zeros (a region never formatted).
  RegionInfo& ri = regions_[regions - 1];
  bool zeros = true;
  for (uint64_t k = 0; zeros && k < recovery_.trailing_bytes; ++k)
    zeros = ri.ref.base[k] == 0;
  if (zeros) return;
  ri.unreadable_bytes = header_.region_size - recovery_.trailing_bytes;
  recovery_.unreadable_bytes += ri.unreadable_bytes;
  recovery_.unreadable.push_back(absl::StrCat(
      path_, ": region ", regions - 1, ": the file is cut short at offset ",
      file_size,
      ", inside the region's header pages: its committed "
      "tail and its whole log are missing, and any records in it cannot "
      "be read"));
}

absl::Status StoreRep::FinishOpen() {
  if (!read_only()) {
    // Become a registered writer before letting the next opener in.
    if (absl::Status s = Lock(fd_, kLockWriters, LockKind::kShared); !s.ok())
      return s;
    if (absl::Status s = Unlock(fd_, kLockRecovery); !s.ok()) return s;
  }
  info_.path = path_;
  info_.format_version = header_.format_version;
  info_.uuid = header_.uuid;
  info_.region_size = header_.region_size;
  info_.created_unix_nanos = header_.created_unix_nanos;
  info_.read_only = read_only();
  IndexPersister::Config config;
  config.path = &path_;
  config.fd = fd_;
  config.header = &header_;
  config.options = &options_;
  config.regions = &regions_;
  config.durability = &durability_;
  persister_.Init(config);
  if (persister_.enabled() && options_.persist_index_in_background) {
    // A store reopened with much of its log uncovered (this open scanned
    // it) gets it covered now, not at the next seal.
    persister_.StartBackground(recovery_.scanned_records >=
                                   CurrentTuning().persist_index_min_records &&
                               recovery_.scanned_records > 0);
  }
  return absl::OkStatus();
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

absl::Status StoreRep::Recover(bool full) {
  LogRecovery::Config config;
  config.path = &path_;
  config.recovery_mode = options_.recovery_mode;
  config.read_only = read_only();
  config.regions = &regions_;
  config.index = &index_;
  config.report = &recovery_;
  absl::StatusOr<uint64_t> max_seq = LogRecovery(config).Run(full);
  if (!max_seq.ok()) return max_seq.status();
  const uint32_t n = known_regions();
  index_.FollowRegions(n);
  local_next_sequence_ = *max_seq + 1;
  if (read_only()) return absl::OkStatus();
  auto seq = next_sequence();
  if (full) {
    seq.store(*max_seq + 1, std::memory_order_release);
    return absl::OkStatus();
  }
  uint64_t cur = seq.load(std::memory_order_acquire);
  while (cur <= *max_seq && !seq.compare_exchange_weak(
                                cur, *max_seq + 1, std::memory_order_acq_rel)) {
  }
  return absl::OkStatus();
}

}  // namespace recmap
