// Error reporting: every failing path sets a code and a message that names what was wrong.
#pragma once

#include <cstdarg>

namespace wb {

// Records msg (printf-style) as this thread's wb_last_error() and returns code, so that failures read
// `return fail(WB_E_INVAL, "...", ...);`.
[[gnu::format(printf, 2, 3)]] int fail(int code, const char *fmt, ...);

// Records the current errno as the message of a WB_E_IO failure of `what`.
int fail_errno(const char *what);

// Clears the thread's message (successful calls leave the previous failure's message in place, as errno does).
void clear_error();

// The error code of the exception being handled, for the handler of an exported function, which must not let
// one reach its C, Python, Rust or Go caller:
//   extern "C" WB_API int wb_x(...) try { ... } catch (...) { return wb::abi_error(__func__); }
// std::bad_alloc is WB_E_NOMEM, "wb_x: out of memory". The library throws nothing else itself; the standard
// library's other exceptions here are std::system_error (a mutex or once_flag whose system call failed), so
// any other exception is WB_E_IO with its what(), or "unknown exception". A thread's cancellation
// (abi::__forced_unwind, from pthread_cancel in a blocking system call) is rethrown: it must unwind.
int abi_error(const char *function);

// Runs fn (returning an error code), turning an exception into its code as abi_error does, with `what` for the
// function's name: for a step whose failure the code after it must undo.
template <typename Fn>
int catching(const char *what, Fn fn) {
  try {
    return fn();
  } catch (...) {
    return abi_error(what);
  }
}

}  // namespace wb
