// The GPU kernels of a library built without nvcc: no PTX, so copy-into keeps one cuMemcpyAsync per tensor, and
// conversions on a GPU are refused (WB_E_NO_CUDA).
#include "copy_batch.hpp"

namespace wb::cuda {

extern const unsigned char kCopyKernelPtx[] = "";
extern const unsigned char kConvertKernelImage[] = "";
extern const unsigned char kConvertFp8KernelImage[] = "";

}  // namespace wb::cuda
