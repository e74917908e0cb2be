#include "background_task.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace recmap {
namespace {

// Nice +19 (about 1.5% of a normal thread's share when a core is
// contended: a writer's prefault thread, which its appends wait for, gets
// the core first)
// and the lowest best-effort I/O priority, for the calling thread only.
// Best effort: lowering one's own priority is always allowed, and a
// failure only leaves the default.
void LowerPriority() {
  const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), 19);
  constexpr int kIoprioWhoProcess = 1;
  constexpr int kIoprioClassBe = 2;
  constexpr int kIoprioClassShift = 13;
  (void)::syscall(SYS_ioprio_set, kIoprioWhoProcess, tid,
                  (kIoprioClassBe << kIoprioClassShift) | 7);
}

}  // namespace

void BackgroundTask::Notify() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  pending_ = true;
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void BackgroundTask::Stop() {
  stop_.store(true, std::memory_order_release);
  std::thread t;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

bool BackgroundTask::Idle() {
  absl::MutexLock lock(&mu_);
  return !pending_ && !running_;
}

void BackgroundTask::Loop() {
  LowerPriority();
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](BackgroundTask* t) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return t->stopped_ || t->pending_;
            },
            this),
        interval_);
    if (stopped_) return;
    pending_ = false;
    running_ = true;
    mu_.Unlock();
    fn_(stop_);
    mu_.Lock();
    running_ = false;
  }
}

}  // namespace recmap
