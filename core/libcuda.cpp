#include "libcuda.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace wb::libcuda {

const Library &open() {
  static Library library{};
  static std::once_flag once;
  std::call_once(once, [] {
    const char *env = std::getenv("WEIGHTBUS_LIBCUDA");
    library.file = env != nullptr && env[0] != '\0' ? env : "libcuda.so.1";
    // RTLD_LOCAL: the driver's symbols stay out of the process's global namespace.
    library.handle = dlopen(library.file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library.handle == nullptr) {
      const char *why = dlerror();
      library.error = why != nullptr ? why : "unknown error";
    }
  });
  return library;
}

void *symbol(const char *name) {
  const Library &library = open();
  return library.handle != nullptr ? dlsym(library.handle, name) : nullptr;
}

}  // namespace wb::libcuda
