#include "failures.hpp"

#include <weightbus/weightbus.h>

namespace wbrelay {

void wb_check(int rc, const std::string &what) {
  if (rc == WB_OK) return;
  throw RelayError(kExitFailure, what + ": " + wb_strerror(rc) + ": " + wb_last_error());
}

}  // namespace wbrelay
