// A helper thread that runs one task, again and again, when asked to:
// notifications that arrive while the task runs fold into one more run.
// The thread is started by the first notification (a handle that never
// asks never has one) and runs at a lower CPU and I/O priority than the
// threads that notify it, so that background upkeep (the persisted index,
// index_persister.cc) yields to the application's own work.
#ifndef RECMAP_STORE_BACKGROUND_TASK_H_
#define RECMAP_STORE_BACKGROUND_TASK_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace recmap {

class BackgroundTask {
 public:
  // `fn` runs on the helper thread; it should return soon after `stop`
  // becomes true.
  using Fn = std::function<void(const std::atomic<bool>& stop)>;
  // With an `interval`, once started the task also runs every `interval`
  // without being asked.
  explicit BackgroundTask(Fn fn,
                          absl::Duration interval = absl::InfiniteDuration())
      : fn_(std::move(fn)), interval_(interval) {}
  ~BackgroundTask() { Stop(); }
  BackgroundTask(const BackgroundTask&) = delete;
  BackgroundTask& operator=(const BackgroundTask&) = delete;

  // Asks for a run. Cheap (a lock and a signal); never waits for a run.
  void Notify();
  // Asks a run in progress to stop, waits for it and joins the thread.
  // Notifications after Stop are ignored.
  void Stop();
  // True if no run is pending or in progress.
  bool Idle();

 private:
  void Loop();

  const Fn fn_;
  const absl::Duration interval_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // started under mu_, joined by Stop
};

}  // namespace recmap

#endif  // RECMAP_STORE_BACKGROUND_TASK_H_
