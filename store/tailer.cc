// The tailing reader. Invariants and the argument for them:
//
// - Within a region, sequence numbers increase in log order: a region has
//   one owner at a time, every owner allocates from the global counter, and
//   recovery restarts the counter above every sequence in the log.
// - A writer allocates a sequence only for the region it already owns, and
//   marks the region's pending word kPendingUnknown (release) before the
//   allocating RMW on the shared counter, then stores the number. So if a
//   round reads the counter G (seq_cst) first, then the pending words
//   (acquire), then the tails: any number N < G that is allocated but not
//   published at the tail read shows as pending kPendingUnknown or N in its
//   region (a later value would mean N's publication was visible).
// - Hence a gap [expected, M) below the smallest unread head M (M < G) can
//   only be filled by a region with no unread head whose owner is alive and
//   whose pending word is kPendingUnknown or inside the gap. If there is
//   none the gap is permanent. Heads >= G wait for the next round.
// - Lost wake-ups: a tailer sets the waiters flag (seq_cst RMW), reads the
//   futex word, re-runs a round, and sleeps only if the flag is still set
//   and nothing is in flight. A writer reads the flag after its allocating
//   RMW: either it saw the flag (and wakes after publishing) or the round
//   saw its pending mark (and the tailer takes a short timed wait instead).
//   A writer that clears the flag bumps the futex word after the tailer's
//   read of it, so the tailer's FUTEX_WAIT returns at once.
// - Spinning (kSpin, kBackoff's first phases) only re-runs rounds; it never
//   sets the waiters flag, so writers pay no wake-up for it. Parking is the
//   same registered wait whatever the strategy.
// - RequestStop: the stop flag is stored (seq_cst) before the futex word is
//   bumped; a waiter reads the word, then the flag, then sleeps on the value
//   it read: either it sees the flag or its FUTEX_WAIT sees a new value.
#include "recmap/tailer.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "file_lock.h"
#include "file_ops.h"
#include "store_peer.h"
#include "store_rep.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

namespace recmap {
namespace {

using Clock = std::chrono::steady_clock;

struct Cursor {
  uint64_t pos = kRegionDataOffset;  // region-relative; next unread record
  uint64_t last_seq = 0;             // sequence of the last record passed
  uint64_t pending = 0;              // pending word read this round
  bool has_head = false;
  bool done = false;     // sealed and read to the end
  uint64_t touched = 0;  // region-relative; pages below are pre-touched
  ScannedRecord head;
};

// Pre-touching (Tailer::State::PreTouch): how far ahead of a cursor, and
// how much per call. A step of 4 pages takes about 1 us (3 us at the 99th
// percentile) on the test VM, which bounds what a record published during
// it waits; 64 KiB took 2.8 us.
constexpr uint64_t kTouchAhead = uint64_t{256} << 10;
constexpr uint64_t kTouchStep = uint64_t{16} << 10;

}  // namespace

struct Tailer::State {
  StoreRep* rep = nullptr;
  TailerOptions options;
  int fd = -1;
  char* shared = nullptr;     // our own mapping of the shared page
  bool can_flag = false;      // the mapping is writable
  bool touch_failed = false;  // MADV_POPULATE_READ unsupported: stop trying
  uint64_t expected = 1;      // the smallest sequence still deliverable
  std::vector<Cursor> cursors;
  TailerCounters counters;
  std::atomic<bool> stop{false};  // RequestStop(), from any thread

  ~State() {
    if (shared != nullptr) io::Unmap(shared, kPageSize);
    if (fd >= 0) io::Close(fd);
  }

  std::atomic_ref<uint64_t> next_sequence() const {
    return std::atomic_ref<uint64_t>(
        *reinterpret_cast<uint64_t*>(shared + kSharedNextSequence));
  }
  std::atomic_ref<uint32_t> waiters() const {
    return std::atomic_ref<uint32_t>(
        *reinterpret_cast<uint32_t*>(shared + kSharedTailWaiters));
  }
  uint32_t* futex_word() const {
    return reinterpret_cast<uint32_t*>(shared + kSharedTailFutex);
  }

  absl::Status Init();
  // Tailer::Next: true with *out filled, or false when the timeout passed.
  absl::StatusOr<bool> Next(RecordView* out, std::chrono::nanoseconds timeout);
  absl::Status FillHead(uint32_t i);
  absl::StatusOr<bool> Round(RecordView* out, bool* in_flight);
  bool Take(uint32_t best, RecordView* out);
  void PreTouch();
  void FutexWait(uint32_t value, std::chrono::nanoseconds timeout);
};

absl::Status Tailer::State::Init() {
  const std::string& path = rep->path();
  absl::Status s = io::Open(path, O_RDWR, 0, &fd);
  can_flag = s.ok();
  if (!s.ok()) {
    if (absl::Status r = io::Open(path, O_RDONLY, 0, &fd); !r.ok()) return r;
  }
  void* p = nullptr;
  if (absl::Status m =
          io::Map(nullptr, kPageSize, PROT_READ | (can_flag ? PROT_WRITE : 0),
                  MAP_SHARED, fd, kSharedPageOffset, path, &p);
      !m.ok())
    return m;
  shared = static_cast<char*>(p);
  if (absl::Status s = rep->LoadNewRegions(); !s.ok()) return s;
  cursors.resize(rep->known_regions());
  if (options.from_sequence == 0) {
    // From now on: tails first, then the counter, so every record below a
    // tail has a sequence below the counter.
    for (uint32_t i = 0; i < cursors.size(); ++i) {
      const StoreRep::RegionInfo& ri = rep->region(i);
      if (!ri.formatted || ri.damaged) continue;
      uint64_t t = ri.ref.committed_tail().load(std::memory_order_acquire);
      if (ri.ref.PlausibleTail(t)) cursors[i].pos = t;
    }
    expected = next_sequence().load(std::memory_order_seq_cst);
    for (Cursor& c : cursors) c.last_seq = expected - 1;
  } else {
    expected = options.from_sequence;
  }
  return absl::OkStatus();
}

// Reads region i's next deliverable record into its head, passing padding
// and records below `expected`.
absl::Status Tailer::State::FillHead(uint32_t i) {
  Cursor& c = cursors[i];
  StoreRep::RegionInfo& ri = rep->region(i);
  if (c.has_head || c.done) return absl::OkStatus();
  if (!ri.formatted) {
    if (ri.damaged ||
        ri.ref.committed_tail().load(std::memory_order_acquire) == 0)
      return absl::OkStatus();
    // Formatted since it was mapped (the first writer recovering a
    // trailing region): let the store reload its header.
    // A failure elsewhere in the store is not this region's: it matters
    // only if this header stays unreadable.
    const absl::Status s = rep->Refresh();
    if (!ri.formatted) return s;
  }
  if (ri.damaged) return absl::OkStatus();
  while (true) {
    const bool sealed = ri.ref.sealed();
    const uint64_t tail =
        ri.ref.committed_tail().load(std::memory_order_acquire);
    if (!ri.ref.PlausibleTail(tail) || c.pos >= tail) {
      if (sealed && c.pos >= tail) c.done = true;
      return absl::OkStatus();
    }
    ScanStop stop = CheckRecordAt(ri.ref, c.pos, tail, &c.head);
    // A writer that resumed a region after a Sync() closed its tail page
    // leaves zeros up to the next page and a resume marker there (as
    // ScanRegion reads it): the log goes on at the marker.
    if (stop != ScanStop::kLimit && c.pos % kPageSize != 0 &&
        ResumeMarkerAfterGap(ri.ref, c.pos, tail, &c.head)) {
      c.pos = c.head.offset;  // the marker, a padding record: skipped below
      stop = ScanStop::kLimit;
    }
    if (stop != ScanStop::kLimit) {
      return absl::DataLossError(
          absl::StrCat(rep->path(), ": region ", i, ": ", ScanStopName(stop),
                       " at file offset ", rep->RegionOffset(i) + c.pos,
                       " below the committed tail"));
    }
    const RecordHeader& h = c.head.header;
    if (h.type != RecordType::kPadding && h.sequence >= expected) {
      c.has_head = true;
      return absl::OkStatus();
    }
    c.pos += RecordSize(h.length);
    c.last_seq = std::max(c.last_seq, h.sequence);
  }
}

// Passes region `best`'s head; true if it is to be delivered (filled in
// `out`), false if it is a tombstone the options skip.
bool Tailer::State::Take(uint32_t best, RecordView* out) {
  Cursor& b = cursors[best];
  const RecordHeader& h = b.head.header;
  b.has_head = false;
  b.pos += RecordSize(h.length);
  b.last_seq = h.sequence;
  expected = h.sequence + 1;
  if (h.type == RecordType::kDelete && !options.include_deletes) return false;
  out->id = h.id;
  out->sequence = h.sequence;
  out->type = h.type;
  out->value = std::string_view(b.head.payload, h.length);
  out->location.region = best;
  out->location.file_offset = rep->RegionOffset(best) + b.head.offset;
  counters.delivered++;
  return true;
}

absl::StatusOr<bool> Tailer::State::Round(RecordView* out, bool* in_flight) {
  *in_flight = false;
  // Fast path: the next sequence number is some region's head. It needs no
  // gap decision, so neither the counter nor the pending words, which every
  // append writes: a tailer keeping up with a fast writer then reads only
  // the tails and the records (fewer cache lines taken from the writer).
  for (int taken = 0; taken < 64; ++taken) {
    int64_t best = -1;
    for (uint32_t i = 0; i < cursors.size(); ++i) {
      if (absl::Status s = FillHead(i); !s.ok()) return s;
      const Cursor& c = cursors[i];
      if (c.has_head && c.head.header.sequence == expected) {
        best = i;
        break;
      }
    }
    if (best < 0) break;
    if (Take(static_cast<uint32_t>(best), out)) return true;
  }
  for (int attempt = 0; attempt < 64; ++attempt) {
    // T1: the counter. Regions any allocation below it went to are
    // published in the shared region count before that allocation.
    const uint64_t g = next_sequence().load(std::memory_order_seq_cst);
    if (absl::Status s = rep->LoadNewRegions(); !s.ok()) return s;
    if (rep->known_regions() > cursors.size())
      cursors.resize(rep->known_regions());
    // T2: pending words of regions that may be filling a gap.
    for (uint32_t i = 0; i < cursors.size(); ++i) {
      Cursor& c = cursors[i];
      if (c.done || c.has_head || !rep->region(i).formatted) continue;
      c.pending =
          rep->region(i).ref.pending_sequence().load(std::memory_order_acquire);
    }
    // T3: tails and heads.
    int64_t best = -1;
    for (uint32_t i = 0; i < cursors.size(); ++i) {
      if (absl::Status s = FillHead(i); !s.ok()) return s;
      const Cursor& c = cursors[i];
      if (c.has_head && (best < 0 || c.head.header.sequence <
                                         cursors[best].head.header.sequence))
        best = i;
    }
    if (best < 0) {
      // Nothing readable. Anything in flight at or past `expected`?
      for (uint32_t i = 0; i < cursors.size(); ++i) {
        const Cursor& c = cursors[i];
        if (c.done || c.has_head || !rep->region(i).formatted) continue;
        if (c.pending == kPendingUnknown ||
            (c.pending > c.last_seq && c.pending >= expected)) {
          *in_flight = true;
          break;
        }
      }
      return false;
    }
    Cursor& b = cursors[best];
    const uint64_t m = b.head.header.sequence;
    if (m >= g) continue;  // allocated after T1: re-read the counter
    if (m != expected) {
      // A gap [expected, m): wait if a live writer may still fill it.
      for (uint32_t i = 0; i < cursors.size(); ++i) {
        const Cursor& c = cursors[i];
        if (c.done || c.has_head || !rep->region(i).formatted) continue;
        const bool maybe =
            c.pending == kPendingUnknown ||
            (c.pending > c.last_seq && c.pending < m && c.pending >= expected);
        if (!maybe) continue;
        absl::StatusOr<bool> live =
            IsLockedByOther(rep->fd(), kLockRegionBase + i, LockKind::kShared);
        if (!live.ok()) return live.status();
        if (*live) {
          *in_flight = true;
          return false;
        }
      }
      counters.gaps_skipped += m - expected;
    }
    if (Take(static_cast<uint32_t>(best), out)) return true;
    attempt = 0;
  }
  // The counter kept moving past every head we saw: report nothing yet.
  *in_flight = true;
  return false;
}

// Called when Next() is about to wait: maps a step of the pages just ahead
// of a cursor (MADV_POPULATE_READ, which changes no byte), so that reading
// the records a writer puts there later does not page-fault on the
// delivery path. Idle time pays for it instead.
void Tailer::State::PreTouch() {
  if (touch_failed) return;
  for (uint32_t i = 0; i < cursors.size(); ++i) {
    Cursor& c = cursors[i];
    const StoreRep::RegionInfo& ri = rep->region(i);
    if (c.done || !ri.formatted || ri.damaged) continue;
    const uint64_t from = std::max(c.touched, c.pos & ~(kPageSize - 1));
    if (from >= std::min(ri.ref.size, c.pos + kTouchAhead)) continue;
    const uint64_t to = std::min(ri.ref.size, from + kTouchStep);
    if (!io::Advise(ri.ref.base + from, to - from, MADV_POPULATE_READ,
                    rep->path())
             .ok()) {
      touch_failed = true;  // an old kernel; faults on delivery instead
      return;
    }
    c.touched = to;
    return;  // one step per wait
  }
}

void Tailer::State::FutexWait(uint32_t value,
                              std::chrono::nanoseconds timeout) {
  if (timeout <= std::chrono::nanoseconds::zero()) return;
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000000000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1000000000);
  // Not FUTEX_PRIVATE: the word is in a MAP_SHARED file mapping, and the
  // waker is another process. EINTR, EAGAIN and ETIMEDOUT all mean "look
  // again".
  ::syscall(SYS_futex, futex_word(), FUTEX_WAIT, value, &ts, nullptr, 0);
}

Tailer::Tailer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Tailer::~Tailer() = default;

absl::StatusOr<std::unique_ptr<Tailer>> Tailer::Create(
    Store& store, const TailerOptions& options) {
  auto st = std::make_unique<State>();
  st->rep = &StorePeer::Rep(store);
  st->options = options;
  if (absl::Status s = st->Init(); !s.ok()) return s;
  return std::unique_ptr<Tailer>(new Tailer(std::move(st)));
}

namespace {

// A CPU hint between polls: lets the sibling hyperthread run and saves
// power without giving up the core.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// A record in flight (allocated, not yet published) is normally published
// within a microsecond; whatever the strategy, poll that long before
// falling back to timed waits (which nobody cuts short: the writer wakes
// only tailers that registered before its allocation).
constexpr std::chrono::nanoseconds kInFlightSpin = std::chrono::microseconds(5);

}  // namespace

absl::StatusOr<std::optional<RecordView>> Tailer::Next(
    std::chrono::nanoseconds timeout) {
  RecordView rec;
  absl::StatusOr<bool> got = state_->Next(&rec, timeout);
  if (!got.ok()) return got.status();
  if (!*got) return std::nullopt;
  return rec;
}

absl::StatusOr<bool> Tailer::State::Next(RecordView* out,
                                         std::chrono::nanoseconds timeout) {
  State& s = *this;
  if (s.stop.load(std::memory_order_relaxed))
    return absl::CancelledError("tailer stopped (RequestStop)");
  bool in_flight = false;
  absl::StatusOr<bool> got = s.Round(out, &in_flight);
  if (!got.ok() || *got) return got;
  if (timeout <= std::chrono::nanoseconds::zero()) return false;
  if (!in_flight) s.PreTouch();
  const Clock::time_point deadline = Clock::now() + timeout;
  const WaitStrategy strategy = s.options.wait;
  const BackoffOptions& bo = s.options.backoff;
  // Polls and yields left before parking (kSpin never parks).
  uint64_t spins_left = strategy == WaitStrategy::kSpin      ? UINT64_MAX
                        : strategy == WaitStrategy::kBackoff ? bo.max_spins
                                                             : 0;
  uint64_t yields_left = strategy == WaitStrategy::kBackoff ? bo.max_yields : 0;
  // The longest single futex wait: kBackoff doubles it from min_park.
  std::chrono::nanoseconds park_cap =
      strategy == WaitStrategy::kBackoff
          ? std::max<std::chrono::nanoseconds>(bo.min_park,
                                               std::chrono::nanoseconds(1))
          : std::chrono::nanoseconds::max();
  std::chrono::nanoseconds backoff = std::chrono::microseconds(20);
  Clock::time_point in_flight_since = Clock::time_point::max();
  auto futex = std::atomic_ref<uint32_t>(*s.futex_word());
  uint64_t polls = 0;
  while (true) {
    // Here the last round delivered nothing.
    if (s.stop.load(std::memory_order_relaxed))
      return absl::CancelledError("tailer stopped (RequestStop)");
    bool spin = spins_left > 0;
    if (!spin && in_flight) {
      const Clock::time_point now = Clock::now();
      if (in_flight_since == Clock::time_point::max()) in_flight_since = now;
      spin = now - in_flight_since < kInFlightSpin;
      if (now >= deadline) return false;
    }
    if (!in_flight) in_flight_since = Clock::time_point::max();
    if (spin) {
      if (spins_left != UINT64_MAX && spins_left > 0) --spins_left;
      CpuRelax();
      s.counters.spins++;
      if ((++polls & 15) == 0 && Clock::now() >= deadline) return false;
    } else if (yields_left > 0) {
      --yields_left;
      ::sched_yield();
      s.counters.yields++;
      if (Clock::now() >= deadline) return false;
    } else {
      const auto left = deadline - Clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return false;
      bool parked = false;
      if (!in_flight && s.can_flag) {
        s.waiters().exchange(1, std::memory_order_seq_cst);
        const uint32_t v = futex.load(std::memory_order_seq_cst);
        got = s.Round(out, &in_flight);
        if (!got.ok() || *got) return got;
        if (!in_flight) {
          // Still registered? A writer that cleared the flag since has
          // bumped the word, possibly before our read of it: look again
          // instead. RequestStop() bumps it too, after setting the flag.
          parked = true;
          if (s.waiters().load(std::memory_order_seq_cst) != 0 &&
              !s.stop.load(std::memory_order_seq_cst)) {
            s.counters.futex_waits++;
            s.FutexWait(v, std::min<std::chrono::nanoseconds>(
                               deadline - Clock::now(), park_cap));
            if (strategy == WaitStrategy::kBackoff)
              park_cap = std::min<std::chrono::nanoseconds>(
                  park_cap * 2, std::max(bo.max_park, bo.min_park));
          }
        }
      }
      if (!parked) {
        // A record is in flight for longer than a moment (its writer was
        // descheduled, or writes a large record), or we cannot ask writers
        // to wake us: a short timed wait, doubling up to 1 ms; a wake-up
        // still cuts it short.
        s.counters.short_waits++;
        const uint32_t v = futex.load(std::memory_order_seq_cst);
        if (!s.stop.load(std::memory_order_seq_cst))
          s.FutexWait(v, std::min<std::chrono::nanoseconds>(
                             backoff, deadline - Clock::now()));
        backoff = std::min<std::chrono::nanoseconds>(
            backoff * 2, std::chrono::milliseconds(1));
      }
    }
    got = s.Round(out, &in_flight);
    if (!got.ok() || *got) return got;
  }
}

void Tailer::RequestStop() {
  State& s = *state_;
  s.stop.store(true, std::memory_order_seq_cst);
  // Bump the word (a waiter that read it before our flag store then does
  // not sleep) and wake whoever sleeps on it. Async-signal-safe.
  if (s.can_flag)
    std::atomic_ref<uint32_t>(*s.futex_word())
        .fetch_add(1, std::memory_order_seq_cst);
  ::syscall(SYS_futex, s.futex_word(), FUTEX_WAKE, INT_MAX, nullptr, nullptr,
            0);
}

bool Tailer::stop_requested() const {
  return state_->stop.load(std::memory_order_relaxed);
}

uint64_t Tailer::next_sequence() const { return state_->expected; }

TailerCounters Tailer::counters() const { return state_->counters; }

}  // namespace recmap
