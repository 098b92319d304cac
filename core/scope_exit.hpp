// Undoing on every way out of a scope, exceptions included: the guard runs its function when it is destroyed,
// unless released first (std::experimental::scope_exit, which GCC 12 lacks).
#pragma once

#include <utility>

namespace wb {

template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F undo) : undo_(std::move(undo)) {}
  ScopeExit(const ScopeExit &) = delete;
  ScopeExit &operator=(const ScopeExit &) = delete;
  ~ScopeExit() {
    if (armed_) undo_();
  }
  // What the scope did is kept: the function will not run.
  void release() { armed_ = false; }

 private:
  F undo_;
  bool armed_ = true;
};

}  // namespace wb
