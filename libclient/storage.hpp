// Where a replica's bytes are in this process (storage.cpp).
#pragma once

#include <cstdint>

#include "layout.hpp"

struct wb_client;

namespace wb {

// Base address in this process of the allocation holding replica `replica` of root tensor `root`: a host
// mapping (writable or read-only) or a CUDA device address, mapped or imported on first use.
// WB_E_STALE for a revoked CUDA allocation, WB_E_NO_CUDA without a driver.
int replica_base(wb_client *client, const shm::Tensor &root, uint32_t replica, bool writable, char **base);

}  // namespace wb
