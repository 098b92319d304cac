#include "progress.hpp"

#include <unistd.h>

#include "common.hpp"

namespace wbcli {
namespace {

constexpr int kBarWidth = 30;
constexpr int64_t kRedrawMs = 100;

void write_err(const std::string &s) {
  if (::write(STDERR_FILENO, s.data(), s.size()) < 0) return;  // nowhere to report a failing terminal
}

}  // namespace

Progress::Progress(std::string label, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)), total_(total_bytes), enabled_(enabled && isatty(STDERR_FILENO)) {}

Progress::~Progress() {
  if (enabled_ && last_draw_ms_ != 0) write_err("\r\033[K");  // leave the line clean for what comes next
}

void Progress::add(uint64_t bytes) {
  done_ += bytes;
  if (!enabled_) return;
  const int64_t now = monotonic_ms();
  if (now - last_draw_ms_ < kRedrawMs && done_ < total_) return;
  last_draw_ms_ = now;
  draw();
}

void Progress::draw() {
  const uint64_t percent = total_ == 0 ? 100 : done_ * 100 / total_;
  const int filled = static_cast<int>(percent * kBarWidth / 100);
  write_err("\r" + label_ + " [" + std::string(filled, '#') + std::string(kBarWidth - filled, ' ') + "] " +
            std::to_string(percent) + "% " + human_bytes(done_) + " / " + human_bytes(total_) + "\033[K");
}

}  // namespace wbcli
