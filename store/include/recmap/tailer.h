// A tailing reader: a cursor that follows the records every writer (any
// thread, any process) appends to a store, in sequence order, like
// `tail -f` on a log.
//
//   auto store = recmap::Store::Open(path, {.read_only = true});
//   auto tailer = recmap::Tailer::Create(**store, {.from_sequence = 1});
//   recmap::RecordView rec;
//   while (true) {
//     absl::StatusOr<bool> got = (*tailer)->Next(&rec,
//     std::chrono::seconds(1)); if (!got.ok()) return got.status(); if (*got)
//     Process(rec);  // else: timed out, nothing new
//   }
//
// Ordering guarantee
// - Records are delivered in strictly increasing sequence order, each at
//   most once, starting at `from_sequence`. Puts and deletes are delivered
//   (RecordView::type tells them apart); superseded versions are delivered
//   too: the tailer follows the log, not the latest state.
// - Every record published with a sequence >= from_sequence is delivered,
//   with one exception below. A record with sequence N is delivered only
//   once every sequence number below N has been delivered or is known to
//   be a permanent gap: the number was allocated by a writer that died
//   before publishing it (its region lock is gone), or it belongs to no
//   record at all (dropped by compaction). While a live writer has
//   allocated a number below N and not yet published it, delivery of N
//   waits for it, however long the writer takes.
// - The exception: a writer killed after writing a complete record but
//   before publishing it leaves a permanent gap; if crash recovery later
//   keeps that record (it validates), a tailer that already went past its
//   sequence does not deliver it. It is visible to Get and scans.
//
// How it works (docs/DESIGN.md, "Tailing"): one cursor per region, merged by
// sequence; a region's owner marks an allocated but unpublished sequence in
// the region's state page, which tells a gap that will fill from one that
// will not. Waiting blocks on a futex in the shared page that writers wake
// only when a tailer has asked for it, so appends stay cheap and an idle
// tailer uses no CPU.
//
// Caveats
// - Not thread-safe: one Tailer per thread. It must be destroyed before its
//   Store. Views stay valid until the Store is destroyed.
// - Blocking needs write access to the file (to set the waiter flag in the
//   shared page). Without it (a file the process may only read), Next()
//   polls every millisecond instead; results are the same.
// - Resuming from a sequence number scans each region from its start
//   (checksums included) to find the first record at or past it.
// - A tailer follows one file: after an offline compaction replaces the
//   file, reopen the store and resume from the last sequence delivered + 1.
#ifndef RECMAP_INCLUDE_RECMAP_TAILER_H_
#define RECMAP_INCLUDE_RECMAP_TAILER_H_

#include <chrono>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/record.h"
#include "recmap/store.h"

namespace recmap {

struct TailerOptions {
  // The first sequence number to deliver. 0 means "from now on": the
  // store's next sequence number when the tailer is created.
  uint64_t from_sequence = 1;
  // Deliver tombstones (RecordType::kDelete) as well as puts.
  bool include_deletes = true;
};

class Tailer {
 public:
  // Errors: Internal (the shared page could not be mapped).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tailer>> Create(
      Store& store, const TailerOptions& options);
  ~Tailer();
  Tailer(const Tailer&) = delete;
  Tailer& operator=(const Tailer&) = delete;

  // Waits up to `timeout` for the next record. Returns true and fills `out`
  // with it, or false if the timeout passed with nothing deliverable (a
  // zero timeout never blocks). Errors: DataLoss (a record below a region's
  // committed tail failed verification; the message names its offset --
  // the cursor does not move past it).
  [[nodiscard]] absl::StatusOr<bool> Next(RecordView* out,
                                          std::chrono::nanoseconds timeout);

  // The sequence number the next delivered record will be at least: the
  // last delivered sequence + 1 (from_sequence before the first). Resume a
  // tailer with this as from_sequence.
  uint64_t next_sequence() const;

  // Counters for tests and tools.
  struct Counters {
    uint64_t delivered = 0;
    uint64_t futex_waits = 0;   // blocking waits entered
    uint64_t short_waits = 0;   // waits for an in-flight record
    uint64_t gaps_skipped = 0;  // sequence numbers declared permanent gaps
  };
  Counters counters() const;

 private:
  struct State;
  explicit Tailer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_TAILER_H_
