// Offline compaction: rewriting a store with only the latest live version of
// each id.
//
//   recmap::CompactionOptions o;
//   absl::StatusOr<recmap::CompactionResult> r =
//       recmap::Compact("data.rmap", o);
//
// The new store keeps every live id with its latest value, its id and its
// sequence number; superseded versions and deleted ids (with their
// tombstones) are dropped. The original file is replaced atomically:
//
//   1. write the new store to "<file>.compact-tmp" (same directory)
//   2. fsync it                       4. verify it against the original
//   3. fsync the directory            5. rename it over <file>
//                                     6. fsync the directory
//
// A crash at any step leaves exactly one complete generation at <file>: the
// original up to step 5, the compacted store after it. A leftover
// "<file>.compact-tmp" is garbage; the next compaction removes it.
// With `output` set, the new store is written there (it must not exist) and
// the original is left untouched: no rename.
//
// Compaction is offline: it refuses (FailedPrecondition) while any other
// handle has the store open for writing, and while it runs, processes that
// open the store for writing wait; once the file is replaced they open the
// new file. Read-only handles opened before the rename keep reading the old
// generation (a consistent snapshot) until they are closed.
#ifndef RECMAP_INCLUDE_RECMAP_COMPACTION_H_
#define RECMAP_INCLUDE_RECMAP_COMPACTION_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "recmap/options.h"

namespace recmap {

struct CompactionProgress {
  uint64_t records_done = 0;  // live records copied so far
  uint64_t records_total = 0;
  uint64_t bytes_done = 0;  // payload bytes copied so far
  uint64_t bytes_total = 0;
};

struct CompactionOptions {
  // Write the compacted store here instead of replacing the original.
  std::string output;
  // Region size of the new store; 0 keeps the original's.
  uint64_t region_size = 0;
  // How damage in the original is treated while reading it (see
  // RecoveryMode); the default tolerates a torn tail, as Open does.
  RecoveryMode recovery_mode = RecoveryMode::kTolerateTornTail;
  // Called from the compacting thread every few thousand records and once
  // at the end of the copy.
  std::function<void(const CompactionProgress&)> progress;
};

struct CompactionResult {
  std::string path;              // the file that now holds the compacted store
  uint64_t bytes_before = 0;     // size of the original file
  uint64_t bytes_after = 0;      // size of the compacted file
  uint64_t records_before = 0;   // puts and deletes in the original log
  uint64_t records_kept = 0;     // live records copied
  uint64_t records_dropped = 0;  // superseded versions and tombstones
  uint64_t payload_bytes = 0;    // payload bytes copied
  double seconds = 0;            // wall time of the whole compaction
};

// Compacts the store at `path`. Errors: NotFound (no such file),
// InvalidArgument (a bad region_size; `path` or `output` is a directory),
// AlreadyExists (`output` exists), FailedPrecondition (another process
// has it open for writing, or another compaction is running), DataLoss (the
// original is damaged beyond what `recovery_mode` tolerates, or the new file
// failed verification -- the original is then untouched), ResourceExhausted
// (disk full: the partial new file is removed), PermissionDenied, Internal.
[[nodiscard]] absl::StatusOr<CompactionResult> Compact(
    const std::string& path, const CompactionOptions& options);

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_COMPACTION_H_
