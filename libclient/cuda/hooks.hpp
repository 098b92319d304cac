// The core library's calls into its CUDA part: cuda/*.cpp where cuda.h was found, else cuda/unavailable.cpp
// (WB_E_NO_CUDA, or nothing to do). From import_base to close_client none loads libcuda for a client that never
// used CUDA: it returns at once. Copy-into calls the rest only for targets or tensors on a GPU.
#pragma once

#include <cstdint>
#include <vector>

struct wb_client;
struct wb_snapshot;

namespace wb::cuda {

// The device address in this process of CUDA allocation `allocation`: the exporter's own pointer in the
// exporting process, else the allocation imported once and cached. WB_E_STALE once revoked or dead.
int import_base(wb_client *client, uint32_t allocation, char **base);

// Closes this client's imports of revoked or dead allocations that none of its snapshots pins, so that the
// exporter waiting in wb_tensor_revoke can proceed.
void sweep(wb_client *client);

// Resuming with a successor broker (connection.cpp, through the resume hooks attach.cpp gives it): the CUDA
// allocations this client has imported, which the successor counts again; then, resumed, the VMM memory this
// client exported, whose chunk fds died with the old broker, is exported to the successor again.
std::vector<uint32_t> imported_allocations(wb_client *client);
void export_again(wb_client *client);

// At detach: closes every import, retires and destroys this client's events, frees the memory it allocated.
void close_client(wb_client *client);

// GPUs visible in this process. WB_OK, WB_E_NO_CUDA or WB_E_CUDA.
int device_count(int *count);

// Ordinal of the GPU with this UUID: WB_E_NOT_FOUND, naming the GPU, if it is not visible here.
int ordinal_of(const uint8_t uuid[16], int *ordinal);

// One copy of a copy-into (copy_into.cpp), checked: the host-to-host ones are memcpy, the others go to
// copy_on_stream.
struct Copy {
  const char *src = nullptr;
  char *dst = nullptr;
  uint64_t bytes = 0;
  bool cuda = false;  // a GPU is on either side
  int ordinal = -1;   // a GPU of the copy, for a NULL stream in a thread without a context
};

// Enqueues the copies with a GPU on either side on stream, after the snapshot's GPU work (cuda/copy.cpp);
// host-to-host copies in `copies` are done already and skipped.
int copy_on_stream(wb_snapshot *snapshot, const std::vector<Copy> &copies, void *stream);

// A plan's strided copy (libclient/plan.cpp): rows of row_bytes at src + i * src_pitch into dst + i * dst_pitch,
// with a GPU on at least one side.
struct Copy2D {
  const char *src = nullptr;
  char *dst = nullptr;
  uint64_t row_bytes = 0;
  uint64_t rows = 1;
  uint64_t src_pitch = 0;
  uint64_t dst_pitch = 0;
  bool src_on_gpu = false;
  bool dst_on_gpu = false;
  int ordinal = -1;  // a GPU of the copy, for a NULL stream in a thread without a context
};

// A plan's zero fill in GPU memory: rows of row_bytes at dst + i * pitch.
struct Fill2D {
  char *dst = nullptr;
  uint64_t row_bytes = 0;
  uint64_t rows = 1;
  uint64_t pitch = 0;
  int ordinal = -1;
};

// Enqueues the strided copies (cuMemcpy2DAsync) and the fills on stream, after the snapshot's GPU work
// (cuda/copy_2d.cpp).
int copy_2d_on_stream(wb_snapshot *snapshot, const std::vector<Copy2D> &copies, const std::vector<Fill2D> &fills,
                      void *stream);

}  // namespace wb::cuda
