// The core library's calls into its CUDA part. None of them loads libcuda: a client that never used CUDA
// returns at once.
#pragma once

#include <cstdint>
#include <vector>

struct wb_client;

namespace wb::cuda {

// The device address in this process of CUDA allocation `allocation`: the exporter's own pointer in the
// exporting process, else the allocation imported once and cached. WB_E_STALE once revoked or dead.
int import_base(wb_client *client, uint32_t allocation, char **base);

// Closes this client's imports of revoked or dead allocations that none of its snapshots pins, so that the
// exporter waiting in wb_tensor_revoke can proceed.
void sweep(wb_client *client);

// Resuming with a successor broker (resume.cpp): the CUDA allocations this client has imported, which the
// successor counts again; then, resumed, the VMM memory this client exported, whose chunk fds died with the
// old broker, is exported to the successor again.
std::vector<uint32_t> imported_allocations(wb_client *client);
void export_again(wb_client *client);

// At detach: closes every import, retires and destroys this client's events, frees the memory it allocated.
void close_client(wb_client *client);

}  // namespace wb::cuda
