// Built where cuda.h or nccl.h was not found: the relay keeps its TCP transport.
#include "failures.hpp"
#include "transport.hpp"

namespace wbrelay {

std::unique_ptr<Transport> make_nccl_transport(uint64_t, int32_t) {
  throw RelayError(kExitFailure, "this weightbus was built without cuda.h and nccl.h: --transport nccl is "
                                 "unavailable (rebuild with CUDA_HOME pointing at them, or use --transport tcp)");
}

}  // namespace wbrelay
