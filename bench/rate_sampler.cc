#include "rate_sampler.h"

#include <algorithm>
#include <chrono>

#include "bench_util.h"

namespace recmap::bench {

RateSampler::RateSampler(const std::atomic<uint64_t>* counter, double duration,
                         double period)
    : counter_(counter) {
  samples_.reserve(static_cast<size_t>(duration / period) + 16);
  samples_.push_back({Now(), counter_->load(std::memory_order_relaxed)});
  thread_ = std::thread([this, duration, period] { Loop(duration, period); });
}

RateSampler::~RateSampler() { Stop(); }

void RateSampler::Loop(double duration, double period) {
  const double t0 = samples_.front().t;
  for (int i = 1; !stop_.load(std::memory_order_relaxed); ++i) {
    // Sleep to the next period boundary, so that a late wake-up does not
    // shift every later sample.
    const double next = t0 + i * period;
    const double now = Now();
    if (next > now)
      std::this_thread::sleep_for(std::chrono::duration<double>(next - now));
    samples_.push_back({Now(), counter_->load(std::memory_order_relaxed)});
    if (samples_.back().t - t0 >= duration)
      done_.store(true, std::memory_order_relaxed);
  }
}

void RateSampler::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
  samples_.push_back({Now(), counter_->load(std::memory_order_relaxed)});
}

double RateSampler::WorstWindow(double window) const {
  if (samples_.size() < 2) return 0;
  double worst = -1;
  size_t j = 0;
  for (size_t i = 0; i < samples_.size(); ++i) {
    while (j < samples_.size() && samples_[j].t - samples_[i].t < window) ++j;
    if (j == samples_.size()) break;
    const double rate = double(samples_[j].count - samples_[i].count) /
                        (samples_[j].t - samples_[i].t);
    if (worst < 0 || rate < worst) worst = rate;
  }
  if (worst >= 0) return worst;
  const Sample &a = samples_.front(), &b = samples_.back();
  return b.t > a.t ? double(b.count - a.count) / (b.t - a.t) : 0;
}

double RateSampler::RateSince(double fraction) const {
  if (samples_.size() < 2) return 0;
  const Sample& last = samples_.back();
  const double from =
      samples_.front().t + fraction * (last.t - samples_.front().t);
  auto it = std::lower_bound(samples_.begin(), samples_.end(), from,
                             [](const Sample& s, double t) { return s.t < t; });
  if (it == samples_.end() || it->t >= last.t) return 0;
  return double(last.count - it->count) / (last.t - it->t);
}

}  // namespace recmap::bench
