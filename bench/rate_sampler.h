// Sampling a writer's progress over time, for the sustained rows: a thread
// reads a counter the writer advances every `period` seconds and ends the
// run after `duration` seconds, so that the steady rate and the worst
// window of a long run can be told from its average.
#ifndef RECMAP_BENCH_RATE_SAMPLER_H_
#define RECMAP_BENCH_RATE_SAMPLER_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace recmap::bench {

class RateSampler {
 public:
  // Starts sampling `*counter` (records done so far, advanced by the
  // writer with relaxed stores) now; done() turns true `duration` seconds
  // later. `counter` must outlive the sampler.
  RateSampler(const std::atomic<uint64_t>* counter, double duration,
              double period = 0.1);
  ~RateSampler();  // Stop()
  RateSampler(const RateSampler&) = delete;
  RateSampler& operator=(const RateSampler&) = delete;

  // True once the duration has passed: the writer stops.
  bool done() const { return done_.load(std::memory_order_relaxed); }
  // Stops sampling (takes one last sample). Idempotent.
  void Stop();

  // After Stop(): the lowest rate (counts per second) over any `window`
  // seconds of consecutive samples (the whole run if it is shorter).
  double WorstWindow(double window) const;
  // After Stop(): the rate from `fraction` (0..1) of the run to its end.
  double RateSince(double fraction) const;

 private:
  struct Sample {
    double t;
    uint64_t count;
  };
  void Loop(double duration, double period);

  const std::atomic<uint64_t>* counter_;
  std::atomic<bool> done_{false};
  std::atomic<bool> stop_{false};
  std::vector<Sample> samples_;  // written by the thread until Stop()
  std::thread thread_;
};

}  // namespace recmap::bench

#endif  // RECMAP_BENCH_RATE_SAMPLER_H_
