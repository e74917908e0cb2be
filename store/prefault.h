// Prefaulting ahead of a writer's tail. A write into a page of a file
// mapping that was never touched costs a page fault (allocate a page-cache
// page, zero it, map it, mark the file range written): about ten times the
// cost of copying the record. A Prefaulter takes that cost off the append
// path: a helper thread runs madvise(MADV_POPULATE_WRITE) over the bytes
// just ahead of the tail, so that the writer finds them mapped.
//
// Populating changes no byte of the file: the pages read as the zeros
// fallocate left, and stay zero until the owner writes records into them.
#ifndef RECMAP_STORE_PREFAULT_H_
#define RECMAP_STORE_PREFAULT_H_

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace recmap {

class Prefaulter {
 public:
  // `background`: populate from a helper thread (started on the first
  // request); otherwise populate synchronously inside Request.
  explicit Prefaulter(bool background) : background_(background) {}
  ~Prefaulter();  // stops and joins the helper thread
  Prefaulter(const Prefaulter&) = delete;
  Prefaulter& operator=(const Prefaulter&) = delete;

  // Asks for [from, to) to be populated; both page-aligned, inside one
  // mapped, allocated region that stays mapped for the Prefaulter's life.
  // Supersedes any earlier request not yet done. Cheap: a lock and a
  // signal. Best effort: a failure of madvise (an old kernel) only stops
  // prefaulting.
  void Request(char* from, char* to);
  // Populates [from, to) in the calling thread (same contract as Request);
  // best effort.
  static void PopulateNow(char* from, char* to) { (void)Populate(from, to); }

 private:
  void Loop();
  static bool Populate(char* from, char* to);

  const bool background_;
  bool failed_ = false;  // synchronous mode only
  absl::Mutex mu_;
  char* from_ ABSL_GUARDED_BY(mu_) = nullptr;
  char* to_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace recmap

#endif  // RECMAP_STORE_PREFAULT_H_
