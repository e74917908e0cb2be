// A tailing reader: a cursor that follows the records every writer (any
// thread, any process) appends to a store, in sequence order, like
// `tail -f` on a log.
//
//   auto store = recmap::Store::Open(path, {.read_only = true});
//   auto tailer = recmap::Tailer::Create(**store, {.from_sequence = 1});
//   while (true) {
//     absl::StatusOr<std::optional<recmap::RecordView>> rec =
//         (*tailer)->Next(std::chrono::seconds(1));
//     if (!rec.ok()) return rec.status();
//     if (rec->has_value()) Process(**rec);  // else: timed out, nothing new
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
// will not. Waiting (the default, WaitStrategy::kPark) blocks on a futex in
// the shared page that writers wake only when a tailer has asked for it, so
// appends stay cheap and an idle tailer uses no CPU; kSpin and kBackoff
// trade CPU for latency. Whatever the strategy, a tailer about to wait
// first maps a step of the pages just ahead of its cursor
// (MADV_POPULATE_READ; it changes nothing in the file), so that the records
// a writer puts there later are delivered without a page fault. For the
// lowest latency, open the writers with Options::prefault_mode =
// PrefaultMode::kInline (options.h): no helper thread then competes with
// the writer or the tailer for a core.
//
// Caveats
// - Not thread-safe: one Tailer per thread (RequestStop() excepted). It
//   must be destroyed before its Store. The views it delivers point into
//   the Store's mapping and stay valid until the Store is destroyed,
//   however far the tailer moves on.
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
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/record.h"
#include "recmap/store.h"

namespace recmap {

class StorePeer;
struct TailerCounters;

// How Next() waits for a record that is not there yet: the trade between
// the CPU a waiting tailer burns and the latency from a writer's publish to
// delivery (docs/BENCHMARKS.md, "Tail latency", has the figures).
enum class WaitStrategy {
  // Default. Sleep on a futex in the shared page; a writer that sees a
  // sleeping tailer wakes it after publishing. No CPU while idle; each
  // delivery after a sleep pays a futex wake-up (a syscall in the writer,
  // a reschedule of the tailer: typically 5-50 us, more on a VM whose idle
  // vCPU must be woken by the hypervisor).
  kPark,
  // Poll the shared page in a loop (with a CPU pause hint) until a record
  // arrives, the timeout passes, or RequestStop(). Sub-microsecond latency;
  // costs one CPU core at 100% for as long as Next() waits, whether records
  // come or not. Pin the tailer to a core of its own (sched_setaffinity):
  // on a machine with fewer free cores than spinning threads it delays the
  // writers it waits for. Writers pay nothing extra (a spinning tailer
  // never asks to be woken), apart from the cache line the tailer reads.
  kSpin,
  // Aeron's BackoffIdleStrategy: up to max_spins polls, then up to
  // max_yields polls each after sched_yield(), then park as kPark does,
  // each futex wait bounded by a timeout doubling from min_park to
  // max_park. Spin-like latency for records that follow each other
  // closely, park-like CPU use when the log goes quiet.
  kBackoff,
};

// Bounds of WaitStrategy::kBackoff, per Next() call (the phases restart
// with every call). Aeron's defaults are 10 spins, 5 yields, 1 us to 1 ms;
// ours spin longer because one poll here is a few tens of nanoseconds.
struct BackoffOptions {
  uint32_t max_spins = 2000;
  uint32_t max_yields = 50;
  std::chrono::nanoseconds min_park = std::chrono::microseconds(1);
  std::chrono::nanoseconds max_park = std::chrono::milliseconds(1);
};

struct TailerOptions {
  // The first sequence number to deliver. 0 means "from now on": the
  // store's next sequence number when the tailer is created.
  uint64_t from_sequence = 1;
  // Deliver tombstones (RecordType::kDelete) as well as puts.
  bool include_deletes = true;
  // How Next() waits (see WaitStrategy).
  WaitStrategy wait = WaitStrategy::kPark;
  // Used by WaitStrategy::kBackoff only.
  BackoffOptions backoff = {};
};

class Tailer {
 public:
  // A tailer of `store`, which must outlive it. Errors: Internal (the
  // shared page could not be mapped), ResourceExhausted (regions another
  // handle added could not be mapped: address space), DataLoss (the header
  // of such a region is damaged), PermissionDenied / NotFound (the file
  // could not be opened again to map its shared page).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tailer>> Create(
      Store& store, const TailerOptions& options);
  ~Tailer();
  Tailer(const Tailer&) = delete;
  Tailer& operator=(const Tailer&) = delete;

  // Waits up to `timeout` for the next record and returns it, or
  // std::nullopt if the timeout passed with nothing deliverable (a zero
  // timeout never blocks). Whatever the wait strategy, a waiting Next()
  // returns once the timeout passes (a spinning one checks the clock every
  // few polls). The record's value is a view into the mapping (valid as
  // Store::Get's views are); nothing is copied or allocated.
  // Errors: DataLoss (a record below a region's committed tail failed
  // verification; the message names its offset -- the cursor does not
  // move past it, so every later call returns it again), Cancelled
  // (RequestStop() was called; nothing is delivered), ResourceExhausted /
  // DataLoss (a region another handle added could not be mapped, or its
  // header is damaged).
  [[nodiscard]] absl::StatusOr<std::optional<RecordView>> Next(
      std::chrono::nanoseconds timeout);

  // Makes the Next() now waiting (or the next one) return Cancelled at
  // once, and every later one too: a spinning tailer stops within a few
  // polls, a parked one is woken. The one member that may be called from
  // another thread, or from a signal handler (it only stores an atomic flag
  // and makes a FUTEX_WAKE system call). The wake-up can reach parked
  // tailers of other processes, which look again and sleep on.
  void RequestStop();
  bool stop_requested() const;

  // The sequence number the next delivered record will be at least: the
  // last delivered sequence + 1 (from_sequence before the first). Resume a
  // tailer with this as from_sequence.
  uint64_t next_sequence() const;

 private:
  friend class StorePeer;  // counters() for recmap's own tests and benches
  struct State;
  TailerCounters counters() const;
  explicit Tailer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace recmap

#endif  // RECMAP_INCLUDE_RECMAP_TAILER_H_
