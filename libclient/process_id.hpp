// This process's pid, remembered: getpid() is a system call, which sandboxes such as gVisor make costly, and a
// lookup of an imported CUDA tensor asks it (is this process the exporter?) for every tensor of a batch.
#pragma once

#include <cstdint>

namespace wb {

// getpid(), asked of the kernel once per process: a forked child asks again.
uint32_t process_id();

}  // namespace wb
