// libcuda, opened with dlopen: nothing in weightbus links the CUDA driver, so that the library, the broker, the
// tools and the tests load and run on machines with no GPU and no driver, and only what uses a GPU needs one.
// This is the one place that finds and opens it; each user resolves the functions it calls, by the exported name
// of the version it means (cuMemAlloc_v2), and keeps them. No cuda.h here: users cast to its prototypes.
//
// The file opened is $WEIGHTBUS_LIBCUDA when set and not empty, else libcuda.so.1 (the driver's soname). The
// variable is read at the first open, which is lazy, so a process may set it before its first CUDA call.
#pragma once

#include <string>

namespace wb::libcuda {

// The outcome of opening the driver.
struct Library {
  std::string file;    // what was opened: $WEIGHTBUS_LIBCUDA or libcuda.so.1
  void *handle;        // null when it could not be loaded
  std::string error;   // then dlerror's text
};

// Opens the driver once per process; later calls return the first outcome at once. The library is never
// closed: CUDA handles opened through it live until the process ends.
const Library &open();

// The driver function exported as name, or nullptr when the driver cannot be opened or lacks it.
void *symbol(const char *name);

// symbol() cast to the caller's function pointer type: false when absent.
template <class Function>
bool resolve(const char *name, Function *out) {
  *out = reinterpret_cast<Function>(symbol(name));
  return *out != nullptr;
}

}  // namespace wb::libcuda
