/* The fixture's one assertion made with cmocka, in an object of its own: the benchmark programs link the
 * fixture's other objects (a private broker) without cmocka, so that they run on GPU hosts that lack it. */
#include <stdarg.h>
#include <string.h>

#include "fixture.h"

void fx_expect_message(const char *first, ...) {
  va_list ap;
  va_start(ap, first);
  for (const char *want = first; want != NULL; want = va_arg(ap, const char *)) {
    if (strstr(wb_last_error(), want) == NULL) {
      va_end(ap);
      fail_msg("wb_last_error() \"%s\" lacks \"%s\"", wb_last_error(), want);
    }
  }
  va_end(ap);
}
