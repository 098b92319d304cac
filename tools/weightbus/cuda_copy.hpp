// Host <-> GPU copies for `load --device cuda:N` and for checkpoints of CUDA topics. The public API moves
// handles, not bytes between host and GPU, so the tool calls the driver itself: libcuda is opened on first use by
// the library's loader (core/libcuda.hpp; never linked), in the GPU's primary context (the one the library and
// the CUDA runtime use). Each copy is synchronous. Failures throw std::runtime_error naming the driver call.
#pragma once

#include <cstdint>

namespace wbcli {

void copy_host_to_device(int32_t ordinal, void *device_dst, const void *host_src, uint64_t bytes);
void copy_device_to_host(int32_t ordinal, void *host_dst, const void *device_src, uint64_t bytes);

}  // namespace wbcli
