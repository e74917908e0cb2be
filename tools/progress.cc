#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "command.h"

namespace recmap::tool {

std::string HumanDuration(double s) {
  if (s < 0) s = 0;
  if (s < 60) return absl::StrFormat("%.1f s", s);
  const uint64_t t = static_cast<uint64_t>(s + 0.5);
  if (t < 3600) return absl::StrFormat("%d min %02d s", t / 60, t % 60);
  return absl::StrFormat("%d h %02d min", t / 3600, t / 60 % 60);
}

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(std::move(label)),
      enabled_(enabled && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::Render(const std::string& label, uint64_t records,
                                uint64_t records_total, uint64_t bytes,
                                uint64_t bytes_total, double elapsed,
                                int width) {
  const double frac =
      bytes_total > 0
          ? std::min(1.0, static_cast<double>(bytes) / bytes_total)
          : (records_total > 0
                 ? std::min(1.0, static_cast<double>(records) / records_total)
                 : 1.0);
  const double rate = elapsed > 0 ? bytes / elapsed : 0;
  std::string eta = "--";
  if (frac >= 1.0) {
    eta = "0.0 s";
  } else if (frac > 0 && elapsed > 0) {
    eta = HumanDuration(elapsed / frac - elapsed);
  }
  const std::string count =
      records_total > 0 ? absl::StrFormat("%d/%d", records, records_total)
                        : absl::StrCat(records);
  std::string tail = absl::StrFormat(
      " %3d%%  %s records  %s/%s  %s/s  left %s", static_cast<int>(frac * 100),
      count, HumanBytes(bytes), HumanBytes(bytes_total),
      HumanBytes(static_cast<uint64_t>(rate)), eta);
  const int bar = std::max<int>(
      10, std::min<int>(
              40, width - static_cast<int>(label.size() + tail.size()) - 4));
  const int filled = static_cast<int>(frac * bar);
  std::string line = label + " [";
  line.append(filled, '=');
  if (filled < bar) {
    line += '>';
    line.append(bar - filled - 1, ' ');
  }
  line += ']';
  line += tail;
  return line;
}

void ProgressBar::Update(uint64_t records, uint64_t records_total,
                         uint64_t bytes, uint64_t bytes_total) {
  records_ = records;
  records_total_ = records_total;
  bytes_ = bytes;
  bytes_total_ = bytes_total;
  Draw(false);
}

void ProgressBar::Draw(bool force) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && drawn_ && now - last_draw_ < std::chrono::milliseconds(100))
    return;
  last_draw_ = now;
  drawn_ = true;
  int width = 100;
  struct winsize ws;
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    width = ws.ws_col;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string line = Render(label_, records_, records_total_, bytes_,
                            bytes_total_, elapsed, width);
  if (static_cast<int>(line.size()) >= width) line.resize(width - 1);
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) return;
  if (drawn_) {
    Draw(true);
    std::fputc('\n', stderr);
  }
  finished_ = true;
}

}  // namespace recmap::tool
