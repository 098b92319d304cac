// The check every C ABI entry point makes of a caller's struct: its struct_size against the size this library
// reads or writes (weightbus.h: each struct is initialised with its _INIT macro).
#pragma once

#include <cstddef>
#include <cstdint>

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb {

inline int check_struct_size(uint32_t given, size_t needed, const char *type_name) {
  if (given < needed) {
    return fail(WB_E_INVAL, "%s.struct_size is %u, expected at least %zu: initialise it with its _INIT macro",
                type_name, given, needed);
  }
  return WB_OK;
}

}  // namespace wb
