// Everything one client holds in CUDA: the allocations it exported, those it imported, its events, copy
// streams and copy kernels. Created by the client's first CUDA call and destroyed at detach: copy kernels,
// copy streams and events first (the events' retirement writes to the segment), then imports, then exported
// memory.
#pragma once

#include "copy.hpp"
#include "copy_batch.hpp"
#include "events.hpp"
#include "exports.hpp"
#include "gpu_arms.hpp"
#include "imports.hpp"

struct wb_client;

namespace wb::cuda {

// Takes the client's connection (for the broker), its segment and slot, and what tells which topics its
// snapshots read; not the client.
struct ClientState {
  ClientState(Connection &connection, const shm::Segment &seg, uint32_t client_id, const PinCheck &pins)
      : exports(connection, seg), imports(connection, seg, pins), events(seg, client_id), gpu_arms(seg, client_id) {}
  Exports exports;
  Imports imports;
  Events events;
  GpuArms gpu_arms;
  CopyLanes copy_lanes;
  CopyKernel copy_kernel;
};

// The client's CUDA state, created on first use. Loads the driver: WB_E_NO_CUDA without one.
int client_state(wb_client *client, ClientState **out);

}  // namespace wb::cuda
