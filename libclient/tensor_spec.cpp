// A caller's wb_tensor_spec array, read and checked (tensor_spec.hpp).
#include "tensor_spec.hpp"

#include "error.hpp"
#include "geometry.hpp"

namespace wb {

const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i) {
  return *reinterpret_cast<const wb_tensor_spec *>(reinterpret_cast<const char *>(specs) +
                                                   size_t(i) * specs[0].struct_size);
}

int check_spec(const wb_tensor_spec &spec) {
  int rc = geometry::check_name(spec.name, "tensor");
  if (rc != WB_OK) return rc;
  uint64_t nbytes;
  rc = geometry::contiguous_bytes(spec.dtype, spec.ndim, spec.shape, &nbytes);
  if (rc != WB_OK) return fail(rc, "tensor '%s': %s", spec.name, wb_last_error());
  return WB_OK;
}

}  // namespace wb
