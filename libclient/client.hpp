// wb_client, the handle of wb_attach: what one attachment to a broker holds. Made and destroyed in attach.cpp;
// the handles below it (topic.hpp) reach the connection, the segment and the lease slots through it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>

#include "allocation_cache.hpp"
#include "connection.hpp"
#include "crash_point.hpp"
#include "layout.hpp"
#include "lease_slots.hpp"

struct wb_topic;

namespace wb::cuda {
struct ClientState;
}

struct wb_client {
  wb::Connection connection;
  uint32_t id = 0;  // our client slot in the segment
  void *segment_base = nullptr;
  uint64_t segment_size = 0;
  int segment_fd = -1;  // kept to see whether the segment outlives its broker (connection.cpp)
  wb::shm::Segment seg;
  wb::CrashSeam crash_seam;  // tests only (crash_point.hpp)

  wb::AllocationCache allocations{connection};
  wb::LeaseSlots leases;

  std::mutex topics_mutex;
  std::set<wb_topic *> topics;

  // What this client holds in CUDA (libclient/cuda/client_state.hpp): created by the first CUDA call, so that
  // clients that never use CUDA never load libcuda; destroyed at detach.
  std::mutex cuda_mutex;
  std::atomic<wb::cuda::ClientState *> cuda{nullptr};
};
