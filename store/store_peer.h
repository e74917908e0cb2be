// recmap's own access to the internals behind its public handles. The
// library's verify, recover, compaction and tailer, the tools, tests,
// benches, fuzz harnesses and ship/ reach a Store's StoreRep and the
// tailer's counters through StorePeer, a friend of the public classes, so
// that the installed headers (store/include/recmap) expose no internals.
// Not installed; not for users of the library.
#ifndef RECMAP_STORE_STORE_PEER_H_
#define RECMAP_STORE_STORE_PEER_H_

#include <cstdint>

#include "recmap/recovery.h"
#include "recmap/store.h"
#include "recmap/tailer.h"
#include "region.h"

namespace recmap {

// What a Tailer has done so far, for tests and benches. Not synchronized:
// read it from the tailer's own thread.
struct TailerCounters {
  uint64_t delivered = 0;
  uint64_t futex_waits = 0;   // blocking waits entered
  uint64_t spins = 0;         // polls by kSpin / kBackoff
  uint64_t yields = 0;        // sched_yield() calls by kBackoff
  uint64_t short_waits = 0;   // waits for an in-flight record
  uint64_t gaps_skipped = 0;  // sequence numbers declared permanent gaps
};

class StorePeer {
 public:
  // The internals of `store`; valid as long as `store` is.
  static StoreRep& Rep(Store& store) { return *store.rep_; }
  static const StoreRep& Rep(const Store& store) { return *store.rep_; }
  static TailerCounters Counters(const Tailer& tailer) {
    return tailer.counters();
  }
};

// RegionRecovery::stop is the internal ScanStop, enumerator for enumerator.
inline LogEnd ToLogEnd(ScanStop s) { return static_cast<LogEnd>(s); }
inline ScanStop ToScanStop(LogEnd s) { return static_cast<ScanStop>(s); }
static_assert(static_cast<int>(LogEnd::kLimit) ==
              static_cast<int>(ScanStop::kLimit));
static_assert(static_cast<int>(LogEnd::kZero) ==
              static_cast<int>(ScanStop::kZero));
static_assert(static_cast<int>(LogEnd::kRegionEnd) ==
              static_cast<int>(ScanStop::kRegionEnd));
static_assert(static_cast<int>(LogEnd::kTruncated) ==
              static_cast<int>(ScanStop::kTruncated));
static_assert(static_cast<int>(LogEnd::kBadHeader) ==
              static_cast<int>(ScanStop::kBadHeader));
static_assert(static_cast<int>(LogEnd::kBadChecksum) ==
              static_cast<int>(ScanStop::kBadChecksum));

}  // namespace recmap

#endif  // RECMAP_STORE_STORE_PEER_H_
