// Everything one client holds in CUDA: the allocations it exported, those it imported, its events, copy
// streams and copy kernels. Created by the client's first CUDA call and destroyed at detach: copy kernels,
// copy streams and events first (the events' retirement writes to the segment), then imports, then exported
// memory.
#pragma once

#include "copy.hpp"
#include "copy_batch.hpp"
#include "events.hpp"
#include "exports.hpp"
#include "imports.hpp"

struct wb_client;

namespace wb::cuda {

struct ClientState {
  explicit ClientState(wb_client *client) : exports(client), imports(client), events(client) {}
  Exports exports;
  Imports imports;
  Events events;
  CopyLanes copy_lanes;
  CopyKernel copy_kernel;
};

// The client's CUDA state, created on first use. Loads the driver: WB_E_NO_CUDA without one.
int client_state(wb_client *client, ClientState **out);

}  // namespace wb::cuda
