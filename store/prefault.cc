#include "prefault.h"

#include <sys/mman.h>

#include "file_ops.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

namespace recmap {

Prefaulter::~Prefaulter() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool Prefaulter::Populate(char* from, char* to) {
  if (from >= to) return true;
  return io::Advise(from, static_cast<size_t>(to - from), MADV_POPULATE_WRITE,
                    "prefault")
      .ok();
}

void Prefaulter::Request(char* from, char* to) {
  if (from >= to) return;
  if (!background_) {
    if (!failed_) failed_ = !Populate(from, to);
    return;
  }
  absl::MutexLock lock(&mu_);
  from_ = from;
  to_ = to;
  if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { Loop(); });
}

void Prefaulter::Loop() {
  constexpr size_t kStep = size_t{1} << 20;
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(
        +[](Prefaulter* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return p->stop_ || p->from_ < p->to_;
        },
        this));
    if (stop_) return;
    char* from = from_;
    char* to = from + kStep < to_ ? from + kStep : to_;
    from_ = to;
    mu_.Unlock();
    const bool ok = Populate(from, to);
    mu_.Lock();
    if (!ok) {
      // Prefaulting is an optimisation; without kernel support, stop.
      stop_ = true;
      return;
    }
  }
}

}  // namespace recmap
