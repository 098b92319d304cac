// A progress bar on stderr for long file work, drawn only when stderr is a terminal (never into logs or pipes).
#pragma once

#include <cstdint>
#include <string>

namespace wbcli {

class Progress {
 public:
  // enabled is further limited to a terminal on stderr.
  Progress(std::string label, uint64_t total_bytes, bool enabled);
  ~Progress();
  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;
  void add(uint64_t bytes);

 private:
  void draw();
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool enabled_;
  int64_t last_draw_ms_ = 0;
};

}  // namespace wbcli
