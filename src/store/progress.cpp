#include "store/progress.h"

#include <fmt/format.h>

namespace hearth::store {

std::string human_size(uint64_t b) {
  const double v = static_cast<double>(b);
  if (b >= 1000ull * 1000 * 1000) return fmt::format("{:.1f} GB", v / 1e9);
  if (b >= 1000ull * 1000) return fmt::format("{:.1f} MB", v / 1e6);
  if (b >= 1000ull) return fmt::format("{:.0f} KB", v / 1e3);
  return fmt::format("{} B", b);
}

std::string human_ago(int64_t t, int64_t now) {
  const int64_t d = std::max<int64_t>(0, now - t);
  auto unit = [](int64_t n, const char* u) { return fmt::format("{} {}{} ago", n, u, n == 1 ? "" : "s"); };
  if (d < 60) return "Less than a minute ago";
  if (d < 3600) return unit(d / 60, "minute");
  if (d < 86400) return unit(d / 3600, "hour");
  if (d < 86400 * 30) return unit(d / 86400, "day");
  if (d < 86400 * 365) return unit(d / (86400 * 30), "month");
  return unit(d / (86400 * 365), "year");
}

ProgressPrinter::ProgressPrinter(std::FILE* out, bool tty) : out_(out), tty_(tty) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

std::string ProgressPrinter::bar_line(const std::string& label, uint64_t completed, uint64_t total, double speed,
                                      bool done) const {
  std::string line = fmt::format("{:<22}", label);
  if (total > 0) {
    const double frac = std::min(1.0, static_cast<double>(completed) / static_cast<double>(total));
    const int width = 24;
    const int fill = static_cast<int>(frac * width);
    line += fmt::format(" {:3.0f}% ▕", frac * 100);
    for (int i = 0; i < width; ++i) line += i < fill ? "█" : " ";
    line += fmt::format("▏ {}/{}", human_size(completed), human_size(total));
  } else {
    line += fmt::format(" {}", human_size(completed));
  }
  if (!done && speed > 0) {
    line += fmt::format("  {}/s", human_size(static_cast<uint64_t>(speed)));
    if (total > completed) {
      const double eta = static_cast<double>(total - completed) / speed;
      line += eta >= 60 ? fmt::format("  {}m{:02}s", static_cast<int>(eta) / 60, static_cast<int>(eta) % 60)
                        : fmt::format("  {}s", static_cast<int>(eta));
    }
  }
  return line;
}

void ProgressPrinter::update(const PullStatus& s) {
  if (!s.layer) {
    // A phase message ("pulling manifest", "writing manifest", "success").
    if (tty_) {
      messages_.push_back(s.status);
      redraw(true);
    } else {
      fmt::print(out_, "{}\n", s.status);
      std::fflush(out_);
    }
    return;
  }
  const std::string key = s.digest.empty() ? s.status : s.digest;
  auto [it, inserted] = rows_.try_emplace(key);
  Row& r = it->second;
  if (inserted) {
    order_.push_back(key);
    r.label = s.status;
  }
  r.completed = s.completed;
  r.total = s.total;
  r.done = r.done || s.done;
  if (!have_start_) {
    have_start_ = true;
    start_ = std::chrono::steady_clock::now();
  }
  if (tty_) {
    redraw(s.done);
    return;
  }
  const int quarter = r.total > 0 ? static_cast<int>(4 * r.completed / r.total) : (r.done ? 4 : 0);
  if (quarter != r.last_quarter || (r.done && r.last_quarter != 4)) {
    r.last_quarter = r.done ? 4 : quarter;
    fmt::print(out_, "{}: {}{}\n", r.label,
               r.total > 0 ? fmt::format("{}% of {}", r.total ? 100 * r.completed / r.total : 0, human_size(r.total))
                           : human_size(r.completed),
               r.done ? " done" : "");
    std::fflush(out_);
  }
}

void ProgressPrinter::redraw(bool force) {
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  uint64_t completed = 0, total = 0;
  for (const auto& [k, r] : rows_) {
    completed += r.completed;
    total += r.total;
  }
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double speed = secs > 0.2 ? static_cast<double>(completed) / secs : 0.0;
  std::string text;
  for (int i = 0; i < drawn_lines_; ++i) text += "\x1b[1A\x1b[2K";  // up one line, clear it
  text += "\r";
  int lines = 0;
  for (const auto& m : messages_) {
    if (m == "success") continue;
    text += m + "\n";
    ++lines;
  }
  for (const auto& k : order_) {
    const Row& r = rows_[k];
    text += bar_line(r.label, r.completed, r.total, r.done ? 0 : speed, r.done) + "\n";
    ++lines;
  }
  if (order_.size() > 1) {
    text += bar_line("total", completed, total, speed, completed >= total && total > 0) + "\n";
    ++lines;
  }
  if (!messages_.empty() && messages_.back() == "success") {
    text += "success\n";
    ++lines;
  }
  drawn_lines_ = lines;
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
}

void ProgressPrinter::finish() {
  if (tty_) redraw(true);
}

}  // namespace hearth::store
