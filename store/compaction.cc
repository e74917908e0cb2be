// Offline compaction. Invariants:
// - The path names a complete store at every instant: the original until the
//   rename, the compacted copy after it. The copy is durable (data synced,
//   directory entry synced) and verified before the rename.
// - While compacting we hold kLockRecovery on the original, so no writer can
//   finish opening it; writers that were waiting reopen the path afterwards
//   (store_open.cc compares the inode under the same lock).
// - The copy keeps ids and sequence numbers, and is written in ascending
//   sequence order, so tailing readers of the copy see the same order.
// - What is copied is the latest record of each live id as the index names
//   it, each validated (checksum, and the id its entry is for) before the
//   copy starts; the verification compares the reopened copy with exactly
//   that list, so every id appears once.
#include "compaction.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "file_lock.h"
#include "file_ops.h"
#include "persisted_index.h"
#include "recmap/compaction.h"
#include "store_peer.h"
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

// An entry of the original's live set: a packed location (StoreRep::Pack)
// and, as collected, the id its index entry is for; once validated, the
// sequence number of the record there.
struct LiveEntry {
  uint64_t packed;
  uint64_t key;
};

constexpr uint64_t kOffsetMask = (uint64_t{1} << 40) - 1;

// Sorts by packed location, i.e. by region, then offset: an LSD radix sort
// on 8-bit digits that skips the digits all entries share (a 64 MiB region
// size leaves four of the eight to sort on).
void SortByLocation(std::vector<LiveEntry>* v) {
  const size_t n = v->size();
  if (n < 2) return;
  std::vector<std::array<size_t, 256>> count(8);
  for (const LiveEntry& e : *v) {
    for (int d = 0; d < 8; ++d) count[d][(e.packed >> (8 * d)) & 0xFF]++;
  }
  std::unique_ptr<LiveEntry[]> tmp(new LiveEntry[n]);
  LiveEntry* from = v->data();
  LiveEntry* to = tmp.get();
  for (int d = 0; d < 8; ++d) {
    std::array<size_t, 256>& c = count[d];
    if (std::find(c.begin(), c.end(), n) != c.end()) continue;
    size_t pos = 0;
    for (size_t& b : c) pos += std::exchange(b, pos);
    for (size_t i = 0; i < n; ++i)
      to[c[(from[i].packed >> (8 * d)) & 0xFF]++] = from[i];
    std::swap(from, to);
  }
  if (from != v->data()) std::copy(from, from + n, v->data());
}

// The live set of the original, validated: what the copy will hold.
struct LiveSet {
  // By location; key is the sequence number.
  std::vector<LiveEntry> records;
  uint64_t payload_bytes = 0;
  uint64_t log_records = 0;  // puts and deletes in the original's log
  // Within each region, log order is sequence order (so it always is in
  // a store that its writers wrote).
  bool ascending = true;
};

// Collects the latest record of every id from the original's index, sorts
// the locations and validates the records there in log order, keeping the
// puts. Errors: DataLoss (a record fails its checksum, or an index entry
// does not point at a put or delete of its id).
absl::Status CollectLive(StoreRep& rep, LiveSet* live) {
  std::vector<LiveEntry>& v = live->records;
  if (absl::Status s = rep.ForEachLatestLocation(
          [&](uint64_t id, uint64_t packed) {
            v.push_back({packed, id});
          },
          &live->log_records);
      !s.ok())
    return s;
  SortByLocation(&v);
  size_t keep = 0;
  uint64_t prev_region = UINT64_MAX, prev_sequence = 0;
  for (const LiveEntry e : v) {
    const uint64_t region = e.packed >> 40;
    const uint64_t offset = (e.packed & kOffsetMask) << 3;
    const uint64_t file_offset =
        rep.RegionOffset(static_cast<uint32_t>(region)) + offset;
    ScannedRecord rec;
    if (region >= rep.known_regions() ||
        !rep.region(static_cast<uint32_t>(region)).formatted ||
        offset < kRegionDataOffset ||
        CheckRecordAt(rep.region(static_cast<uint32_t>(region)).ref, offset,
                      rep.region(static_cast<uint32_t>(region)).ref.size,
                      &rec) != ScanStop::kLimit) {
      return absl::DataLossError(absl::StrCat(rep.path(), ": record at offset ",
                                              file_offset,
                                              " failed verification"));
    }
    const RecordHeader& h = rec.header;
    if (h.id != e.key ||
        (h.type != RecordType::kPut && h.type != RecordType::kDelete)) {
      // Entries indexed from the log name their own records: a wrong one
      // comes from the persisted index (its checksum passed, its coverage
      // matched the log), as Get reports it.
      const bool persisted = rep.recovery().persisted_index_used;
      return absl::DataLossError(absl::StrCat(
          persisted ? IndexPathFor(rep.path()) : rep.path(), ": the ",
          persisted ? "persisted " : "", "index entry for id ", e.key,
          " points at a record of id ", h.id, " (type ",
          static_cast<int>(h.type), ") at offset ", file_offset,
          persisted ? "; delete the file to rebuild it" : ""));
    }
    if (h.type == RecordType::kDelete) continue;
    if (region == prev_region && h.sequence <= prev_sequence)
      live->ascending = false;
    prev_region = region;
    prev_sequence = h.sequence;
    live->payload_bytes += h.length;
    v[keep++] = LiveEntry{e.packed, h.sequence};
  }
  v.resize(keep);
  return absl::OkStatus();
}

// The locations of `live` in ascending sequence order: a merge of the
// regions' runs, which are each in sequence order already (else a sort).
std::vector<uint64_t> InSequenceOrder(LiveSet& live) {
  std::vector<LiveEntry>& v = live.records;
  std::vector<uint64_t> out;
  out.reserve(v.size());
  if (!live.ascending) {
    std::sort(v.begin(), v.end(), [](const LiveEntry& a, const LiveEntry& b) {
      return a.key < b.key;
    });
    for (const LiveEntry& e : v) out.push_back(e.packed);
    return out;
  }
  struct Run {
    size_t pos, end;
  };
  std::vector<Run> runs;
  for (size_t i = 0; i < v.size();) {
    size_t j = i + 1;
    while (j < v.size() && v[j].packed >> 40 == v[i].packed >> 40) ++j;
    runs.push_back(Run{i, j});
    i = j;
  }
  // A min-heap on each run's next sequence number.
  auto later = [&](const Run& a, const Run& b) {
    return v[a.pos].key > v[b.pos].key;
  };
  std::make_heap(runs.begin(), runs.end(), later);
  while (!runs.empty()) {
    std::pop_heap(runs.begin(), runs.end(), later);
    Run& r = runs.back();
    // Take from this run while it stays below every other run's next.
    const uint64_t bound = runs.size() > 1
                               ? v[runs.front().pos].key
                               : std::numeric_limits<uint64_t>::max();
    do {
      out.push_back(v[r.pos].packed);
      ++r.pos;
    } while (r.pos < r.end && v[r.pos].key < bound);
    if (r.pos == r.end) {
      runs.pop_back();
    } else {
      std::push_heap(runs.begin(), runs.end(), later);
    }
  }
  return out;
}

}  // namespace

namespace {
absl::Status Busy(std::string message) {
  absl::Status s = absl::FailedPreconditionError(std::move(message));
  s.SetPayload(kBusyPayload, absl::Cord("1"));
  return s;
}
}  // namespace

bool IsStoreBusy(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) && s.GetPayload(kBusyPayload);
}

absl::Status LockForCompaction(int fd, const std::string& path) {
  absl::StatusOr<bool> got = TryLock(fd, kLockCompaction, LockKind::kExclusive);
  if (!got.ok()) return got.status();
  if (!*got) {
    return Busy(
        absl::StrCat(path, ": another compaction of this store is running"));
  }
  if (absl::Status s = Lock(fd, kLockRecovery, LockKind::kExclusive); !s.ok())
    return s;
  absl::StatusOr<bool> writers =
      IsLockedByOther(fd, kLockWriters, LockKind::kExclusive);
  if (!writers.ok()) return writers.status();
  if (*writers) {
    return Busy(
        absl::StrCat(path, ": the store is open for writing by another process",
                     LiveWriterPids(path),
                     "; offline compaction needs every writer closed"));
  }
  return absl::OkStatus();
}

absl::Status VerifyCompacted(Store& original,
                             const std::vector<uint64_t>& copied, Store& copy) {
  const std::string& path = copy.info().path;
  StoreRep& src = StorePeer::Rep(original);
  StoreRep& dst = StorePeer::Rep(copy);
  // One pass over each log, in lockstep: the copy's records in log order
  // against the original's at the locations written, which are in
  // ascending sequence order. Both walks touch memory sequentially. The
  // copy's regions are scanned directly, every checksum verified, without
  // indexing them (an index of the copy is not needed to compare it, and
  // building one cost more than the rest of the verification).
  if (absl::Status s = dst.LoadNewRegions(); !s.ok()) return s;
  size_t next = 0;
  absl::Status mismatch;
  auto compare = [&](uint32_t region_of_copy, const ScannedRecord& rec) {
    if (rec.header.type == RecordType::kPadding) return true;
    const RecordView c = dst.ScannedView(region_of_copy, rec);
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
    // The original's records were validated before the copy (CollectLive)
    // and its file is locked and mapped read-only: a bounded decode is
    // enough to compare the copy, whose checksums the scan verified, with
    // them.
    RecordHeader oh;
    const RegionRef* ref =
        region < src.known_regions() ? &src.region(region).ref : nullptr;
    if (ref == nullptr || offset < kRegionDataOffset ||
        offset + kRecordHeaderSize > ref->size ||
        !oh.DecodeFrom(ref->base + offset) ||
        oh.length > ref->size - offset - kRecordHeaderSize) {
      mismatch = absl::DataLossError(absl::StrCat(
          original.info().path,
          ": the original changed during compaction: no record at offset ",
          src.RegionOffset(region) + offset));
      return false;
    }
    const std::string_view ovalue(ref->base + offset + kRecordHeaderSize,
                                  oh.length);
    const char* what = nullptr;
    if (c.type != RecordType::kPut) {
      what = "not a put";
    } else if (c.id != oh.id) {
      what = "different id";
    } else if (c.sequence != oh.sequence) {
      what = "different sequence";
    } else if (c.value != ovalue) {
      what = "different value";
    }
    if (what != nullptr) {
      mismatch = absl::DataLossError(absl::StrCat(
          path, ": compacted copy differs from the original at id ", oh.id,
          " (sequence ", oh.sequence, "), live record ", next + 1, " of ",
          copied.size(), ": ", what, " (copy: id ", c.id, ", sequence ",
          c.sequence, ", offset ", c.location.file_offset, ")"));
      return false;
    }
    ++next;
    return true;
  };
  const uint32_t n = dst.known_regions();
  for (uint32_t i = 0; i < n; ++i) {
    const StoreRep::RegionInfo& ri = dst.region(i);
    const uint64_t tail =
        ri.formatted ? ri.ref.committed_tail().load(std::memory_order_acquire)
                     : 0;
    if (!ri.formatted || ri.damaged || !ri.ref.PlausibleTail(tail)) {
      return absl::DataLossError(
          absl::StrCat(path, ": region ", i, " of the compacted copy is ",
                       ri.formatted ? "damaged" : "not formatted",
                       " (committed tail ", tail, ")"));
    }
    ScanResult res =
        ScanRegion(ri.ref, kRegionDataOffset, tail, /*salvage=*/false,
                   [&](const ScannedRecord& rec) { return compare(i, rec); });
    if (!mismatch.ok()) return mismatch;
    if (res.end < tail) {
      return absl::DataLossError(absl::StrCat(
          path, ": compacted copy is damaged: ", ScanStopName(res.stop),
          " at file offset ", dst.RegionOffset(i) + res.end,
          " below the committed tail"));
    }
  }
  if (next != copied.size()) {
    return absl::DataLossError(absl::StrCat(path, ": compacted copy holds ",
                                            next, " records; expected ",
                                            copied.size(), " live records"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CompactionResult> Compact(const std::string& path,
                                         const CompactionOptions& options) {
  return Compact(path, options, nullptr);
}

absl::StatusOr<CompactionResult> Compact(
    const std::string& path, const CompactionOptions& options,
    const std::function<void(CompactionStep)>& step_hook) {
  const auto start = std::chrono::steady_clock::now();
  auto step = [&](CompactionStep k) {
    if (step_hook) step_hook(k);
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
  StoreRep* src_rep = &StorePeer::Rep(**src);
  const uint64_t bytes_before = FileSize(path);
  uint64_t records_before = 0, live_records = 0, live_payload_bytes = 0;
  // Where each record to copy is in the original, in ascending sequence
  // order: what is written, and what the verification compares the copy
  // with.
  std::vector<uint64_t> copied;
  {
    LiveSet live;
    if (absl::Status s = CollectLive(*src_rep, &live); !s.ok()) return s;
    records_before = live.log_records;
    live_records = live.records.size();
    live_payload_bytes = live.payload_bytes;
    copied = InSequenceOrder(live);
  }

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
      options.region_size != 0 ? options.region_size : src_rep->region_size();
  // Room for every live record, even re-packed into smaller regions with
  // their per-region overhead and end-of-region waste.
  dst_opts.max_file_size =
      kFirstRegionOffset + 4 * (bytes_before + live_payload_bytes +
                                32 * live_records + 2 * dst_opts.region_size);
  absl::StatusOr<std::unique_ptr<Store>> dst = Store::Open(out, dst_opts);
  if (!dst.ok()) return dst.status();
  // From here on, a failure removes the partial copy.
  auto fail = [&](absl::Status s) -> absl::Status {
    dst->reset();
    ::unlink(out.c_str());
    return s;
  };

  CompactionProgress prog;
  prog.records_total = live_records;
  prog.bytes_total = live_payload_bytes;
  {
    absl::StatusOr<std::unique_ptr<Writer>> w = (*dst)->NewWriter();
    if (!w.ok()) return fail(w.status());
    StoreRep* rep = &StorePeer::Rep(**dst);
    for (const uint64_t packed : copied) {
      // Validated by CollectLive; the original is read-only and locked.
      const RecordView v = src_rep->ViewAt(packed);
      if (absl::Status s = rep->WriteWithSequence(**w, RecordType::kPut, v.id,
                                                  v.sequence, v.value);
          !s.ok())
        return fail(s);
      prog.records_done++;
      prog.bytes_done += v.value.size();
      if (options.progress && prog.records_done % 4096 == 0)
        options.progress(prog);
    }
  }
  if (options.progress) options.progress(prog);
  step(CompactionStep::kCopied);

  if (absl::Status s = (*dst)->Sync(); !s.ok()) return fail(s);
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

  // Read back through the copy's own handle, still open but with no
  // writer: its mapping shows the file's pages as they are now, including
  // anything another handle changed since the copy was written. Closing it
  // writes nothing (no writer, no index).
  if (absl::Status s = VerifyCompacted(**src, copied, **dst); !s.ok())
    return fail(s);
  dst->reset();
  step(CompactionStep::kVerified);

  CompactionResult r;
  r.path = replace ? path : out;
  r.bytes_before = bytes_before;
  r.bytes_after = FileSize(out);
  r.records_before = records_before;
  r.records_kept = prog.records_done;
  r.records_dropped = records_before - prog.records_done;
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
    // lock_fd is now the last reference to the old generation, which the
    // rename unlinked: closing it frees the old file's page cache and
    // blocks (ext4 evicts the inode inside close(): 0.1-0.3 s for the
    // bench's 270 MB store, discards included), none of which the new
    // store needs. Its locks guard the old inode, which openers no longer
    // use (store_open.cc compares the inode under kLockRecovery; a waiter
    // wakes when the close drops them and reopens the path), so the close
    // is left to a thread of its own.
    std::thread([fd = std::exchange(lock_fd.fd, -1)] { ::close(fd); }).detach();
  }
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return r;
}

}  // namespace recmap
