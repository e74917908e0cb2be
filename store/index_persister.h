// The background index writer of a writable handle: extends the persisted
// index file (persisted_index.h) in place as the log grows, on a
// BackgroundTask thread, so that neither an append nor a close waits for
// it; and at a clean close covers what little it left. Its failures never
// fail a write: the first is kept for Close() and each is passed to
// Options::on_background_error.
#ifndef RECMAP_STORE_INDEX_PERSISTER_H_
#define RECMAP_STORE_INDEX_PERSISTER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "background_task.h"
#include "format.h"
#include "persisted_index.h"
#include "recmap/options.h"
#include "region.h"

namespace recmap {

class Durability;
class RegionSet;

// How often the background writer looks for log to cover once started.
inline constexpr absl::Duration kIndexPassInterval = absl::Milliseconds(200);
// A clean close covers the log the background writer left uncovered if it
// is at most this much (a few milliseconds of work), else leaves it to the
// next open.
inline constexpr uint64_t kCloseCatchUpBytes = uint64_t{8} << 20;

// The trust rules every region a persisted index covers must pass: its
// header is this store's, with the index's epoch, and its covered tail is
// within its committed tail. Reads the region headers from the mapping, so
// any thread may call it. Errors: FailedPrecondition saying which rule.
absl::Status CheckCoverage(const RegionSet& regions,
                           const std::vector<IndexedRegion>& covered);

class IndexPersister {
 public:
  // What the writer works on. Every pointer outlives the persister.
  struct Config {
    const std::string* path = nullptr;  // the store file's
    int fd = -1;                        // the store file (kLockIndex)
    const FileHeader* header = nullptr;
    const Options* options = nullptr;
    RegionSet* regions = nullptr;
    Durability* durability = nullptr;
  };

  IndexPersister() = default;
  IndexPersister(const IndexPersister&) = delete;
  IndexPersister& operator=(const IndexPersister&) = delete;
  ~IndexPersister() { Stop(); }

  void Init(const Config& config) { c_ = config; }
  // Whether this handle keeps an index file at all (writable, persisting
  // on, torn-tail recovery).
  bool enabled() const;

  // Starts the background thread (woken by RegionSealed and then every
  // kIndexPassInterval); `cover_now`: run a pass at once (this open
  // scanned much log).
  void StartBackground(bool cover_now);
  // A writer of this handle sealed a region: wakes the background writer,
  // if there is one and the store is big enough to need an index. Cheap:
  // never waits for the index to be written.
  void RegionSealed();
  // True if no background run is pending or in progress (also when there
  // is no background writer).
  bool Idle();
  // Stops the background thread, between two records; the file already
  // holds every batch it ended.
  void Stop();
  // Clean close, after Stop: covers the rest of the log on the calling
  // thread -- all of it without a background writer, else only if little
  // is left. `opened_with` is the coverage this handle adopted at open
  // (null if none), what is covered when the writer never ran.
  void CatchUpAtClose(const std::vector<IndexedRegion>* opened_with);
  // The first failure of background or close-time work, OK if none.
  absl::Status first_error() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The regions whose header validates, in order up to the first that
  // does not (coverage ends before it), with their epochs and the log
  // bytes below their committed tails now.
  struct LogView {
    std::vector<RegionRef> refs;
    std::vector<uint64_t> epochs;
    uint64_t log_bytes = 0;
    uint32_t known = 0;  // the regions this handle had mapped
    // Log bytes past the covered tails of `covered`.
    uint64_t UncoveredBy(const std::vector<IndexedRegion>& covered) const;
  };
  LogView ViewLog() const;

  // One pass: covers each region's log up to its committed tail (a region
  // still being written once kOpenRegionStepBytes more are there, unless
  // `to_tail`).
  void Pass(const std::atomic<bool>& stop, bool to_tail);
  // The writer of the file, opened or created (false if neither could be
  // done).
  bool OpenWriter(const LogView& log);
  // Pass's work on region i; false when the pass must end.
  class IndexLock;
  bool CoverRegion(const LogView& log, uint32_t i, bool to_tail,
                   const std::atomic<bool>& stop, IndexLock& lock);
  // One batch of region i's records from *from towards `to`; false when
  // the region's coverage cannot go on.
  bool RegionBatch(const LogView& log, uint32_t i, uint64_t to,
                   const std::atomic<bool>& stop, uint64_t* from);
  // Grows the file (PersistedIndexWriter::Grow); a failure other than a
  // stop goes to Failed. False unless it grew.
  bool Grow(uint64_t slots, uint32_t region_capacity,
            const std::atomic<bool>& stop);
  void Failed(const absl::Status& s) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether an attempt to take the index lock got it: false if another
  // handle holds it, or (reported through Failed) if the lock call failed.
  bool Held(const absl::StatusOr<bool>& got);

  Config c_;
  // The file's writer: the background thread's, or the closing thread's
  // once the thread is stopped.
  std::unique_ptr<PersistedIndexWriter> writer_;
  std::unique_ptr<BackgroundTask> task_;  // null: no background writer
  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace recmap

#endif  // RECMAP_STORE_INDEX_PERSISTER_H_
