#include "tuning.h"

#include "absl/synchronization/mutex.h"

namespace recmap {
namespace {

struct Current {
  absl::Mutex mu;
  Tuning tuning ABSL_GUARDED_BY(mu);
};

Current& Get() {
  static Current* const current = new Current;  // never destroyed
  return *current;
}

}  // namespace

Tuning CurrentTuning() {
  Current& c = Get();
  absl::MutexLock lock(&c.mu);
  return c.tuning;
}

void SetTuningForTesting(const Tuning& tuning) {
  Current& c = Get();
  absl::MutexLock lock(&c.mu);
  c.tuning = tuning;
}

}  // namespace recmap
