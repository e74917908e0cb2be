// Options for opening a recmap store.
#ifndef RECMAP_INCLUDE_RECMAP_OPTIONS_H_
#define RECMAP_INCLUDE_RECMAP_OPTIONS_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"

namespace recmap {

// What Open does with damage found while recovering the log (after RocksDB's
// WAL recovery modes). See docs/DESIGN.md, "Recovery".
enum class RecoveryMode {
  // Default. A region whose log ends in an invalid record (a writer killed
  // mid-record, unsynced pages lost in a power cut) is cut at its last valid
  // record. Damage below a region's durable tail -- bytes that a completed
  // Sync() promised -- is not a torn tail: Open fails with DataLoss.
  kTolerateTornTail,
  // Any invalid byte below a region's committed tail fails Open with
  // DataLoss; the store is never opened for writing in a damaged state.
  kAbsoluteConsistency,
  // Keep every record that validates: skip damaged bytes and resynchronise
  // on the next valid record header. Never the default: records after a
  // damaged one are returned even though a record before them was lost.
  kSalvage,
};

// Who populates the pages ahead of a writer's tail (Options::prefault_bytes).
enum class PrefaultMode {
  // Default. A helper thread per Writer populates the window in 1 MiB
  // steps: with a core to spare, appends do not fault and the writer's
  // thread pays nothing, which is best for throughput. The helper needs CPU
  // time while the writer runs, though: on a machine with no idle core (a
  // writer and a spinning tailer on 2 cores, or a writer's process pinned
  // to one core) the scheduler takes it from the writer or the tailer in
  // whole time slices, and every record published meanwhile waits.
  kBackground,
  // The writer's own thread populates, a 16 KiB step at a time, each time
  // its tail crosses a step: no helper thread and no time slice taken from
  // anyone; an append that crosses a step pays for populating it (about
  // one append in 120 for 100-byte records). For latency-sensitive writers
  // (docs/BENCHMARKS.md, "Tail latency").
  kInline,
};

struct Options {
  // Create the file if it does not exist.
  bool create_if_missing = false;
  // With create_if_missing: fail with AlreadyExists if the file exists.
  bool error_if_exists = false;
  // Open without write access. Writes fail with FailedPrecondition; the
  // file is never modified, not even by recovery.
  bool read_only = false;
  // Size of each region, for a new file only (an existing file's header
  // wins). A multiple of 4096 between 16 KiB and 4 GiB. The largest record
  // a region holds is region_size - 8192 - 32 bytes.
  uint64_t region_size = uint64_t{64} << 20;
  // Address space reserved for the mapping, fixing the largest size the
  // file can grow to while this handle is open. Virtual only; costs no
  // memory.
  uint64_t max_file_size = uint64_t{1} << 40;
  RecoveryMode recovery_mode = RecoveryMode::kTolerateTornTail;
  // How far ahead of a writer's tail the pages of its region are populated
  // (madvise MADV_POPULATE_WRITE, from a helper thread per Writer), so that
  // appends do not page-fault. 0 turns prefaulting off (and the thread).
  uint64_t prefault_bytes = uint64_t{16} << 20;
  PrefaultMode prefault_mode = PrefaultMode::kBackground;
  // Keep the offset index in a sidecar file "<path>.idx" (docs/FORMAT.md)
  // so that an open maps it and scans only the log it does not cover
  // instead of rescanning the whole log. The file is extended in place, in
  // batches, and trusted only within the boot of the machine that wrote it
  // (after a reboot it is rebuilt) and when it proves to describe this log
  // (persisted_index.h); ignored in the non-default recovery modes. Stores
  // whose log cannot hold 100,000 records get none.
  bool persist_index = true;
  // With persist_index: extend the file while writers run, from a
  // background thread per writable handle (at low CPU and I/O priority;
  // started when a writer of the handle seals a region once the store can
  // hold 100,000 records, then woken every 200 ms): each region is covered
  // up to its committed tail once 1 MiB more was appended to it (sealed
  // regions: to their final tail). Neither
  // appends nor lookups wait for it; a close stops it and covers what is
  // left if that is at most 8 MiB of log (else the next open scans it).
  // Off: the whole uncovered log is covered at a clean close instead, on
  // the closing thread.
  bool persist_index_in_background = true;
  // Called, on the background thread that met it, with each failure of
  // background work (an update of the index file that could not be made:
  // a full disk, an I/O error). The work is retried later; the first
  // failure is also what Store::Close() returns. Must not call back into
  // the store. Null: failures are only kept for Close().
  std::function<void(const absl::Status&)> on_background_error;
  // Verify each record's checksum on Get (records are always verified when
  // this handle first indexes them from the log, and a record located
  // through the persisted index file is verified on every read whatever
  // this says; this re-verifies the others on every read too).
  bool verify_checksums_on_read = false;
};

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_OPTIONS_H_
