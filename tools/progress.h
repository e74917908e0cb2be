// A progress bar for long tool operations, drawn on stderr only when stderr
// is a terminal: records, bytes, rate and time left, redrawn at most ten
// times a second.
#ifndef RECMAP_TOOLS_PROGRESS_H_
#define RECMAP_TOOLS_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace recmap::tool {

class ProgressBar {
 public:
  // `label` starts the line ("compact"). Disabled (every call a no-op) when
  // stderr is not a terminal or `enabled` is false.
  explicit ProgressBar(std::string label, bool enabled = true);
  ~ProgressBar();  // Finish()

  // `records_total` 0: not known (the line shows the count alone).
  void Update(uint64_t records, uint64_t records_total, uint64_t bytes,
              uint64_t bytes_total);
  // Draws the final state and ends the line.
  void Finish();
  bool enabled() const { return enabled_; }

  // The line as drawn, for tests: `elapsed` seconds since the start.
  static std::string Render(const std::string& label, uint64_t records,
                            uint64_t records_total, uint64_t bytes,
                            uint64_t bytes_total, double elapsed, int width);

 private:
  void Draw(bool force);

  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  uint64_t records_ = 0, records_total_ = 0, bytes_ = 0, bytes_total_ = 0;
};

// "3.2 s", "4 min 05 s", "1 h 02 min".
std::string HumanDuration(double seconds);

}  // namespace recmap::tool

#endif  // RECMAP_TOOLS_PROGRESS_H_
