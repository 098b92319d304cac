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
    case WB_OK: return "WB_OK: success";
    case WB_E_INVAL: return "WB_E_INVAL: invalid argument";
    case WB_E_NOMEM: return "WB_E_NOMEM: out of memory";
    case WB_E_NOT_FOUND: return "WB_E_NOT_FOUND: no such topic, tensor or version";
    case WB_E_EXISTS: return "WB_E_EXISTS: exists with another definition";
    case WB_E_NAME_TOO_LONG: return "WB_E_NAME_TOO_LONG: name empty or longer than 255 bytes";
    case WB_E_DTYPE: return "WB_E_DTYPE: unknown or unfitting dtype";
    case WB_E_SHAPE: return "WB_E_SHAPE: invalid shape";
    case WB_E_SIZE: return "WB_E_SIZE: size or byte range out of bounds";
    case WB_E_NOSPC: return "WB_E_NOSPC: broker capacity exhausted";
    case WB_E_ROLE: return "WB_E_ROLE: only the topic's publisher may do this";
    case WB_E_BUSY: return "WB_E_BUSY: the topic has a live publisher";
    case WB_E_TIMEOUT: return "WB_E_TIMEOUT: the wait timed out";
    case WB_E_BROKER_GONE: return "WB_E_BROKER_GONE: the broker is gone";
    case WB_E_ABI_MISMATCH: return "WB_E_ABI_MISMATCH: layout or protocol version differs";
    case WB_E_DIRTY: return "WB_E_DIRTY: tensors were left half-written by a publisher that died or aborted";
    case WB_E_EXPIRED: return "WB_E_EXPIRED: the version is no longer kept";
    case WB_E_STATE: return "WB_E_STATE: not allowed in the current state";
    case WB_E_PERM: return "WB_E_PERM: permission denied";
    case WB_E_PROTOCOL: return "WB_E_PROTOCOL: malformed message";
    case WB_E_IO: return "WB_E_IO: system call failed";
    case WB_E_NO_CUDA: return "WB_E_NO_CUDA: CUDA is not available";
    case WB_E_STALE: return "WB_E_STALE: revoked by its exporter";
    case WB_E_CONNECT: return "WB_E_CONNECT: no broker at the socket path";
    case WB_E_CUDA: return "WB_E_CUDA: a CUDA driver call failed";
    default: return "WB_E_UNKNOWN: unknown error code";
  }
}
