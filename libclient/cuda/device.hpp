// Device identity: the registry names GPUs by UUID, never by ordinal, because processes may see different
// ordinals (CUDA_VISIBLE_DEVICES). Each process maps UUIDs to its own ordinals and works in each GPU's primary
// context, the one the CUDA runtime and PyTorch use, so that pointers are shared with them.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <string>

#include "hooks.hpp"  // device_count and ordinal_of, which copy-into's checks of its targets call too

namespace wb::cuda {

// UUID of ordinal: WB_E_INVAL if out of range.
int uuid_of(int ordinal, uint8_t uuid[16]);

// The primary context of ordinal, retained on first use and kept for the process's lifetime.
int primary_context(int ordinal, CUcontext *context);

// The ordinal of the GPU a context belongs to.
int context_ordinal(CUcontext context, int *ordinal);

// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi prints it.
std::string uuid_text(const uint8_t uuid[16]);

// The context that work on stream runs in: the stream's own, or for NULL the thread's current context, else
// the primary context of fallback_ordinal.
int stream_context(void *stream, int fallback_ordinal, CUcontext *context);

}  // namespace wb::cuda
