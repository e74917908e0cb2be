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
#include "location.h"
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
  return io::Stat(path, &st).ok() ? static_cast<uint64_t>(st.st_size) : 0;
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
    if (fd >= 0) io::Close(fd);
  }
};

// An entry of the original's live set: a packed location (location.h)
// and, as collected, the id its index entry is for; once validated, the
// sequence number of the record there.
struct LiveEntry {
  uint64_t packed;
  uint64_t key;
};

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
    const Location at = Location::Unpack(e.packed);
    const uint64_t region = at.region;
    const uint64_t offset = at.offset;
    const uint64_t file_offset = rep.RegionOffset(at.region) + offset;
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
    if (h.id != e.key || !IsUserRecord(h.type)) {
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
    if (IsTombstone(h.type)) continue;
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
    while (j < v.size() &&
           Location::RegionOf(v[j].packed) == Location::RegionOf(v[i].packed))
      ++j;
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

namespace {

using StepHook = std::function<void(CompactionStep)>;

void Step(const StepHook& step_hook, CompactionStep k) {
  if (step_hook) step_hook(k);
}

// The original, locked against writers and open read-only, and what is
// copied from it.
struct Source {
  Fd lock_fd;  // holds the compaction locks until closed
  std::unique_ptr<Store> store;
  uint64_t bytes_before = 0;
  uint64_t records_before = 0;  // puts and deletes in its log
  uint64_t live_records = 0;
  uint64_t live_payload_bytes = 0;
  // Where each record to copy is in the original, in ascending sequence
  // order: what is written, and what the verification compares the copy
  // with.
  std::vector<uint64_t> copied;
};

// Locks the original at `path` (LockForCompaction), opens it read-only and
// collects its validated live set.
absl::Status OpenSource(const std::string& path,
                        const CompactionOptions& options,
                        const StepHook& step_hook, Source* src) {
  if (absl::Status s = io::Open(path, O_RDWR, 0, &src->lock_fd.fd); !s.ok())
    return s;
  if (absl::Status s = LockForCompaction(src->lock_fd.fd, path); !s.ok())
    return s;
  Step(step_hook, CompactionStep::kLocked);
  Options o = ReadOnlyOptions(path);
  o.recovery_mode = options.recovery_mode;
  absl::StatusOr<std::unique_ptr<Store>> st = Store::Open(path, o);
  if (!st.ok()) return st.status();
  src->store = std::move(*st);
  src->bytes_before = FileSize(path);
  LiveSet live;
  if (absl::Status s = CollectLive(StorePeer::Rep(*src->store), &live); !s.ok())
    return s;
  src->records_before = live.log_records;
  src->live_records = live.records.size();
  src->live_payload_bytes = live.payload_bytes;
  src->copied = InSequenceOrder(live);
  return absl::OkStatus();
}

// Creates the empty copy at `out` (replacing a stale temporary one when
// `replace`), with room for every record of `src`.
absl::StatusOr<std::unique_ptr<Store>> CreateCopy(
    const std::string& out, bool replace, const CompactionOptions& options,
    const Source& src) {
  if (replace) {
    if (absl::Status s = io::UnlinkIfPresent(out); !s.ok()) return s;
  }
  Options o;
  o.create_if_missing = true;
  o.error_if_exists = true;
  // An index file written at its close would be named after the temporary
  // path and outlive the rename; the new store writes its own at its first
  // clean close.
  o.persist_index = false;
  o.region_size = options.region_size != 0
                      ? options.region_size
                      : StorePeer::Rep(*src.store).region_size();
  // Room for every live record, even re-packed into smaller regions with
  // their per-region overhead and end-of-region waste.
  o.max_file_size =
      kFirstRegionOffset + 4 * (src.bytes_before + src.live_payload_bytes +
                                32 * src.live_records + 2 * o.region_size);
  return Store::Open(out, o);
}

// Writes every record of src.copied into `dst`, in that order, keeping ids
// and sequence numbers; `prog` counts what was written.
absl::Status CopyRecords(const Source& src, Store& dst,
                         const CompactionOptions& options,
                         CompactionProgress* prog) {
  prog->records_total = src.live_records;
  prog->bytes_total = src.live_payload_bytes;
  absl::StatusOr<std::unique_ptr<Writer>> w = dst.NewWriter();
  if (!w.ok()) return w.status();
  StoreRep* from = &StorePeer::Rep(*src.store);
  StoreRep* rep = &StorePeer::Rep(dst);
  for (const uint64_t packed : src.copied) {
    // Validated by CollectLive; the original is read-only and locked.
    const RecordView v = from->ViewAt(packed);
    if (absl::Status s = rep->WriteWithSequence(**w, RecordType::kPut, v.id,
                                                v.sequence, v.value);
        !s.ok())
      return s;
    prog->records_done++;
    prog->bytes_done += v.value.size();
    if (options.progress && prog->records_done % 4096 == 0)
      options.progress(*prog);
  }
  w->reset();
  if (options.progress) options.progress(*prog);
  return absl::OkStatus();
}

// Makes the copy at `out` durable: its data, its size and its directory
// entry.
absl::Status SyncCopy(Store& dst, const std::string& out,
                      const StepHook& step_hook) {
  if (absl::Status s = dst.Sync(); !s.ok()) return s;
  {
    // The data are synced; sync once more through a fresh descriptor so the
    // file's size is durable whatever the store did last.
    Fd f;
    if (absl::Status s = io::Open(out, O_RDONLY, 0, &f.fd); !s.ok()) return s;
    if (absl::Status s = io::Fdatasync(f.fd, out); !s.ok()) return s;
  }
  Step(step_hook, CompactionStep::kSynced);
  if (absl::Status s = io::SyncParentDir(out); !s.ok()) return s;
  Step(step_hook, CompactionStep::kDirSynced);
  return absl::OkStatus();
}

// After the copy took the original's name at `path`: drops the old
// generation's index file, makes the rename durable and lets the old file
// go.
absl::Status RetireOriginal(const std::string& path, const StepHook& step_hook,
                            Fd* lock_fd) {
  // The old generation's index file names the old uuid: it would only be
  // rejected (and rewritten) at the next close. A crash before this
  // unlink leaves exactly that, which is harmless.
  if (absl::Status s = io::UnlinkIfPresent(IndexPathFor(path)); !s.ok())
    return s;
  // The compacted store is in place; a failure to sync the directory
  // leaves either generation complete, but the caller must know.
  if (absl::Status s = io::SyncParentDir(path); !s.ok()) return s;
  Step(step_hook, CompactionStep::kRenameSynced);
  // lock_fd is now the last reference to the old generation, which the
  // rename unlinked: closing it frees the old file's page cache and
  // blocks (ext4 evicts the inode inside close(): 0.1-0.3 s for a 270 MB
  // store, discards included), none of which the new store needs. Its
  // locks guard the old inode, which openers no longer use (store_open.cc
  // compares the inode under kLockRecovery; a waiter wakes when the close
  // drops them and reopens the path), so the close is left to a thread of
  // its own.
  std::thread([fd = std::exchange(lock_fd->fd, -1)] {
    io::Close(fd);
  }).detach();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompactionResult> Compact(const std::string& path,
                                         const CompactionOptions& options) {
  return Compact(path, options, nullptr);
}

absl::StatusOr<CompactionResult> Compact(const std::string& path,
                                         const CompactionOptions& options,
                                         const StepHook& step_hook) {
  const auto start = std::chrono::steady_clock::now();
  Source src;
  if (absl::Status s = OpenSource(path, options, step_hook, &src); !s.ok())
    return s;

  const bool replace = options.output.empty();
  const std::string out = replace ? path + ".compact-tmp" : options.output;
  absl::StatusOr<std::unique_ptr<Store>> dst =
      CreateCopy(out, replace, options, src);
  if (!dst.ok()) return dst.status();
  // From here on, a failure removes the partial copy.
  auto fail = [&](absl::Status s) -> absl::Status {
    dst->reset();
    (void)io::Unlink(out);
    return s;
  };

  CompactionProgress prog;
  if (absl::Status s = CopyRecords(src, **dst, options, &prog); !s.ok())
    return fail(s);
  Step(step_hook, CompactionStep::kCopied);
  if (absl::Status s = SyncCopy(**dst, out, step_hook); !s.ok()) return fail(s);
  // Read back through the copy's own handle, still open but with no
  // writer: its mapping shows the file's pages as they are now, including
  // anything another handle changed since the copy was written. Closing it
  // writes nothing (no writer, no index).
  if (absl::Status s = VerifyCompacted(*src.store, src.copied, **dst); !s.ok())
    return fail(s);
  dst->reset();
  Step(step_hook, CompactionStep::kVerified);

  CompactionResult r;
  r.path = replace ? path : out;
  r.bytes_before = src.bytes_before;
  r.bytes_after = FileSize(out);
  r.records_before = src.records_before;
  r.records_kept = prog.records_done;
  r.records_dropped = src.records_before - prog.records_done;
  r.payload_bytes = prog.bytes_done;
  src.store.reset();
  if (replace) {
    if (absl::Status s = io::Rename(out, path); !s.ok()) return fail(s);
    Step(step_hook, CompactionStep::kRenamed);
    if (absl::Status s = RetireOriginal(path, step_hook, &src.lock_fd); !s.ok())
      return s;
  }
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return r;
}

}  // namespace recmap
