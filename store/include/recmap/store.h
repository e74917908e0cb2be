// recmap: a persistent, memory-mapped record store.
//
// A store is one file of fixed-size regions. Each writer -- a thread or a
// process -- appends records to a region it owns exclusively, so writers
// never share a lock; a global sequence number orders all writes, and for
// each id the record with the highest sequence wins. Readers map the file
// and return zero-copy views. See docs/DESIGN.md and docs/FORMAT.md.
//
//   auto store = recmap::Store::Open("data.rmap", {.create_if_missing = true});
//   if (!store.ok()) return store.status();
//   absl::Status s = (*store)->Put(42, "hello");
//   absl::StatusOr<std::string_view> v = (*store)->Get(42);
//
// Error codes (absl::StatusCode), used consistently by every call (each
// call's comment lists the ones it returns; no call returns another):
//   InvalidArgument     a bad argument (a value larger than a region holds,
//                       a bad option, a directory for a file)
//   NotFound            no such id (Get), no such file (Open, NewWriter)
//   AlreadyExists       Open with error_if_exists on an existing file
//   FailedPrecondition  write on a read-only store; a newer format version;
//                       a handle whose earlier flush failed (poisoned)
//   PermissionDenied    the file cannot be opened with the requested access
//   DataLoss            the file is damaged; the message names the offset
//   ResourceExhausted   the disk, the file-size limit or the reserved address
//                       space is full
//   Unavailable         Open: the file was replaced (by compaction) on
//                       every attempt to open it; retrying may succeed
//   Cancelled           Tailer::Next after Tailer::RequestStop()
//   Internal            an unexpected system-call failure (errno in message)
// A failed system call maps its errno so: ENOSPC, EFBIG, EDQUOT, ENOMEM
// ResourceExhausted; EACCES, EPERM, EROFS PermissionDenied; ENOENT, ENOTDIR,
// ELOOP, ENAMETOOLONG NotFound; EISDIR InvalidArgument; any other Internal.
//
// Caveats
// - Network filesystems (NFS, SMB, FUSE) are not supported: the design needs
//   a coherent shared page cache between processes and working OFD locks.
// - fork(): a child must not use its parent's Store, Writer or views of it
//   for writing; open the store again in the child. (The child shares the
//   parent's open file descriptions and therefore its region locks.)
// - Opening one file twice in one process is supported: each handle is an
//   independent reader/writer and the handles coordinate as processes do.
// - Views returned by Get, MultiGet, the iterations and a Tailer point into
//   the mapping; they stay valid until the Store is destroyed (Close() does
//   not end them). Using one afterwards is undefined. A later write of the
//   same id never changes the bytes of a view: records are never
//   overwritten in place (offline compaction writes a new file).
// - Another program modifying the file underneath (truncating it, writing
//   into it) is outside the contract: truncation can raise SIGBUS on access.
// - Ids returned by Append are sequence numbers. Mixing Append with explicit
//   Put ids is allowed but the caller must keep the two id spaces apart.
#ifndef RECMAP_INCLUDE_RECMAP_STORE_H_
#define RECMAP_INCLUDE_RECMAP_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/options.h"
#include "recmap/record.h"
#include "recmap/recovery.h"

namespace recmap {

class StorePeer;
class StoreRep;
class Writer;

struct RegionStats {
  uint32_t index = 0;
  uint64_t epoch = 0;
  uint64_t file_offset = 0;     // where the region starts in the file
  uint64_t committed_tail = 0;  // region-relative end of published records
  uint64_t durable_tail = 0;    // region-relative end of synced records
  bool durable_tail_valid = false;
  bool sealed = false;
  bool formatted = true;        // false: allocated, header not written yet
  uint32_t owner_pid = 0;       // last writer's pid; 0 if released cleanly
  bool owner_alive = false;     // a live process holds the region's lock
  uint64_t records = 0;         // records indexed in this region
  uint64_t fill_bytes = 0;      // bytes of records (headers + payloads)
  uint64_t capacity_bytes = 0;  // bytes available for records
  // Published bytes a read-only handle cannot read (StoreStats::unreadable).
  uint64_t unreadable_bytes = 0;
};

struct StoreStats {
  uint64_t file_size = 0;
  uint64_t region_size = 0;
  uint32_t regions = 0;
  uint64_t records = 0;        // puts + deletes in the log
  uint64_t live_records = 0;   // ids whose latest record is a put
  uint64_t tombstones = 0;     // ids whose latest record is a delete
  uint64_t payload_bytes = 0;  // payload bytes of all records
  uint64_t live_payload_bytes = 0;
  uint64_t next_sequence = 0;
  // Memory of this handle's offset index: its in-memory table plus the
  // persisted index file it maps (0 if none).
  uint64_t index_memory_bytes = 0;
  std::vector<RegionStats> region_stats;
  // Published records a read-only handle found at open that it cannot read
  // (a file cut short inside its last region, a log that ends below its
  // committed tail): their bytes, and one message per region naming the
  // offsets. 0 and empty when every published record is readable, and
  // always for a writable handle (its open recovers the store instead).
  uint64_t unreadable_bytes = 0;
  std::vector<std::string> unreadable;
};

// Identity of an open store file.
struct StoreInfo {
  std::string path;
  uint32_t format_version = 0;
  std::array<uint8_t, 16> uuid{};
  uint64_t region_size = 0;
  uint64_t created_unix_nanos = 0;
  bool read_only = false;
};

class Store {
 public:
  // Opens (or creates) the store at `path`, recovering it if needed
  // (last_recovery() then says what was cut). A writable open waits while
  // another process recovers the store or compacts it.
  // Errors: NotFound (no file and !create_if_missing; a path that does not
  // resolve: a missing directory, a symlink loop, a name too long),
  // AlreadyExists, InvalidArgument (bad options, a directory),
  // PermissionDenied, DataLoss (empty or damaged file: wrong magic, bad
  // header checksum, damage the recovery mode does not tolerate),
  // FailedPrecondition (a newer format version), ResourceExhausted (address
  // space, a full disk while recovery formats or scrubs a region),
  // Unavailable (the file was replaced under each of 100 attempts),
  // Internal.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> Open(
      const std::string& path, const Options& options);

  // Closes the handle as the destructor does, and returns what went wrong
  // during its life that no call has returned: a failed flush (the handle
  // was poisoned; Sync() returned it too) or a failed update of the index
  // file (Options::persist_index: the log is intact, the next open scans
  // more of it). Releases this handle's regions (a clean release), stops
  // its background index writer and, if that left at most 8 MiB of log
  // uncovered, covers it (a few milliseconds; all of it with
  // persist_index_in_background off). It does not Sync(): unsynced records
  // survive a process exit but not a power loss. The handle's Writers must
  // be gone. After Close() only the destructor and a further Close() may be
  // called; views stay valid until the destructor (the file stays mapped).
  // Idempotent: a second Close() does nothing and returns OK (the failure
  // is returned once). Errors: the first failure, naming its file, with
  // its system call's code (the errno mapping above: ResourceExhausted,
  // PermissionDenied, NotFound, Internal).
  [[nodiscard]] absl::Status Close();
  // Close() unless already closed -- its status dropped: call Close() to
  // see it -- then unmaps the file and closes its descriptor, which drops
  // this handle's locks.
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Writes `value` for `id`; once it returns OK the record is published:
  // visible to every reader in every process, and it survives this
  // process's crash. Thread-safe (threads of one handle share one region;
  // for parallel appends give each thread its own Writer).
  // Errors: InvalidArgument (value too large for a region),
  // FailedPrecondition (read-only; a poisoned handle that must take a new
  // region), ResourceExhausted (disk or file full), DataLoss (a region
  // another handle added has a damaged header), PermissionDenied,
  // Internal.
  [[nodiscard]] absl::Status Put(uint64_t id, std::string_view value);
  // Appends `value` under a new id (the record's sequence number) and
  // returns the id. Errors as Put.
  [[nodiscard]] absl::StatusOr<uint64_t> Append(std::string_view value);
  // Writes a tombstone for `id`. Deleting an absent id is not an error.
  // Errors as Put.
  [[nodiscard]] absl::Status Delete(uint64_t id);

  // The latest value for `id`, written by any writer in any process.
  // The view stays valid until this Store is destroyed. Thread-safe.
  // Every record returned passed its checksum in this process, however it
  // was located (the persisted index file is only a hint of where to look).
  // Errors: NotFound (never written, or deleted), DataLoss (the record
  // failed verification; the message names its file offset).
  [[nodiscard]] absl::StatusOr<std::string_view> Get(uint64_t id);
  // As Get, with the record's metadata.
  [[nodiscard]] absl::StatusOr<RecordView> GetRecord(uint64_t id);
  // Get for each of `ids` (in any order, duplicates allowed): ids.size()
  // results, the i-th being what Get(ids[i]) would return -- with one lock
  // round and the lookups overlapped (the index slots and records of a
  // batch of ids are prefetched together), so a batch of random ids costs a
  // fraction of as many Get calls. All lookups see the index as of the
  // call. Views stay valid as Get's do; the one allocation is the vector.
  // Errors: as Get, per entry; the call itself cannot fail, so it returns
  // no status of its own.
  [[nodiscard]] std::vector<absl::StatusOr<std::string_view>> MultiGet(
      std::span<const uint64_t> ids);

  // Makes every record published before the call (by any writer) survive a
  // power loss: data pages are flushed, then each region's durable tail.
  // After a failure the handle is poisoned: every later Sync() fails too
  // (Linux may have dropped the dirty pages). Errors: FailedPrecondition
  // (read-only, or poisoned), Internal / ResourceExhausted /
  // PermissionDenied (the flush), DataLoss (a region another handle added
  // has a damaged header).
  [[nodiscard]] absl::Status Sync();

  // A writer with a region of its own: appends from one thread with no lock
  // shared with any other writer. Not thread-safe itself; use one per
  // thread. Must be destroyed before the Store. It claims a region only at
  // its first write, so the write reports what claiming can return (as
  // Put). Errors: FailedPrecondition (read-only), NotFound /
  // PermissionDenied (the file could not be opened again for its region
  // locks: removed, or its access changed), Internal.
  [[nodiscard]] absl::StatusOr<std::unique_ptr<Writer>> NewWriter();

  // Calls `fn` for each live record (latest version of each id, tombstones
  // excluded) in ascending sequence order, as of the call. Records are
  // verified against their checksums. Stops early when `fn` returns false.
  // Errors: DataLoss (a record failed verification).
  [[nodiscard]] absl::Status ForEachLive(
      const std::function<bool(const RecordView&)>& fn);
  // Calls `fn` for every put and delete record in the log -- superseded
  // records and tombstones included -- in log order: region by region, and
  // within a region in the order it was written. Records are verified
  // against their checksums. The cheapest full read: no index lookups and
  // no sort. Records of different writers are not in sequence order; use
  // ForEachLive for that. Stops early when `fn` returns false. Starts with
  // a Refresh() and fails as it does.
  // Errors: DataLoss (a record failed verification, or Refresh found
  // damage), ResourceExhausted / Internal (Refresh).
  [[nodiscard]] absl::Status ForEachRecord(
      const std::function<bool(const RecordView&)>& fn);
  // Calls `fn` for every record of region `region` in log order, including
  // superseded records and tombstones, and also the region's padding
  // records (RecordType::kPadding: the resume markers a Sync() leaves when
  // it closes a page, docs/FORMAT.md) -- the raw log, for tools; skip them
  // to see only puts and deletes. Errors: InvalidArgument (no such
  // region), DataLoss.
  [[nodiscard]] absl::Status ForEachInRegion(
      uint32_t region, const std::function<bool(const RecordView&)>& fn);

  // Brings this handle's index up to date with other processes' writes:
  // maps the regions they added and indexes what they published. Get,
  // MultiGet, ForEachLive, ForEachInRegion and Stats refresh by themselves
  // and, when that fails, answer from what is already indexed; Refresh()
  // is the call that reports the failure. Thread-safe.
  // Errors: ResourceExhausted (the file grew past this handle's
  // max_file_size, or no address space: the new regions are not mapped),
  // DataLoss (a new region's header is damaged, or a log fails
  // verification below its committed tail: that region is indexed up to
  // the damage and every later Refresh() returns the same error),
  // Internal.
  [[nodiscard]] absl::Status Refresh();

  // Counts, sizes and per-region state as of the call (it refreshes as
  // Get does). Cannot fail: a persisted-index entry that does not point at
  // a record of its id is left out of the counts.
  StoreStats Stats();
  const StoreInfo& info() const;

  // What this handle's open found in the log and what its recovery cut
  // (recovery.h). Fixed at Open; valid as long as the Store.
  const RecoveryReport& last_recovery() const;

 private:
  friend class StorePeer;  // recmap's own tools and tests (not installed)
  explicit Store(std::unique_ptr<StoreRep> rep);
  std::unique_ptr<StoreRep> rep_;
};

// An exclusive appender. Claims a region on its first write (and a new one
// when that fills up), holding it by a kernel lock that vanishes with the
// process, so a crashed writer's region is claimable at once.
class Writer {
 public:
  ~Writer();  // releases the region cleanly
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // As Store::Put / Append / Delete.
  [[nodiscard]] absl::Status Put(uint64_t id, std::string_view value);
  [[nodiscard]] absl::StatusOr<uint64_t> Append(std::string_view value);
  [[nodiscard]] absl::Status Delete(uint64_t id);

  // The region this writer appends to, or -1 before the first write.
  int64_t region() const;

 private:
  friend class Store;
  friend class StoreRep;
  struct State;
  explicit Writer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_STORE_H_
