// Compiles the C headers and the C++ wrapper as strict C++17: the build of this file is the test.
#include <weightbus/dlpack_versioned.h>
#include <weightbus/weightbus.hpp>

int header_cxx_wrapper_compiles();

int header_cxx_wrapper_compiles() {
  wb_tensor_info info = weightbus::tensor_info();
  return int(info.struct_size) + int(sizeof(weightbus::Client)) + int(sizeof(weightbus::Snapshot));
}
