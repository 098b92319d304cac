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

}  // namespace wb
