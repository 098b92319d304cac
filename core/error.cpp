#include "error.hpp"

#include <cxxabi.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "weightbus/weightbus.h"

namespace {
thread_local char last_message[512];
}

namespace wb {

// Formats into a local buffer first: callers may pass wb_last_error() itself as an argument, to wrap the
// message of the call that failed.
int fail(int code, const char *fmt, ...) {
  char message[sizeof(last_message)];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);
  memcpy(last_message, message, sizeof(message));
  return code;
}

int fail_errno(const char *what) {
  int saved = errno;
  return fail(WB_E_IO, "%s: %s", what, strerror(saved));
}

void clear_error() { last_message[0] = '\0'; }

int abi_error(const char *function) {
  try {
    throw;
  } catch (abi::__forced_unwind &) {
    throw;
  } catch (const std::bad_alloc &) {
    return fail(WB_E_NOMEM, "%s: out of memory", function);
  } catch (const std::exception &e) {
    return fail(WB_E_IO, "%s: %s", function, e.what());
  } catch (...) {
    return fail(WB_E_IO, "%s: unknown exception", function);
  }
}

}  // namespace wb

extern "C" WB_API const char *wb_last_error(void) { return last_message; }

extern "C" WB_API const char *wb_strerror(int code) {
  switch (code) {
#define WB_STRERROR_CASE(name, value, text) \
  case name: return #name ": " text;
    WB_ERROR_MAP(WB_STRERROR_CASE)
#undef WB_STRERROR_CASE
    default: return "WB_E_UNKNOWN: unknown error code";
  }
}
