// The core library's calls into its CUDA part: cuda/*.cpp where cuda.h was found, else cuda/unavailable.cpp
// (WB_E_NO_CUDA, or nothing to do). From import_base to close_client none loads libcuda for a client that never
// used CUDA: it returns at once. Copy-into calls the rest only for targets or tensors on a GPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "convert_params.h"

struct wb_client;
struct wb_snapshot;
struct wb_topic;

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

// At detach, before the broker hears of it: waits (at most 10 s) until the GPU work of the versions this
// client published on streams is done, since the broker lets readers go on past a gone publisher's versions.
void finish_published(wb_client *client);

// At detach: closes every import, retires and destroys this client's events, frees the memory it allocated.
void close_client(wb_client *client);

// A publisher's release of a GPU arm it claimed (core/arms.hpp): writes token into the arm's word from stream,
// after the work before it there (the version's). Where the stream cannot write it, waits for the stream on the
// host and stores it. Never fails: a claimed arm's reader waits for the token.
void write_arm_word(wb_client *client, void *stream, std::atomic<uint64_t> &word, uint64_t token);

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

// A plan's copy with a GPU on either side (libclient/plan.cpp), fixed when the plan is made: rows of row_bytes
// from the plan's source `source` at src_offset + i * src_pitch into dst + i * dst_pitch. Where the source's
// bytes are changes with the version (PlanSource); nothing else does.
struct PlanCopy {
  uint32_t source = 0;
  uint64_t src_offset = 0;
  char *dst = nullptr;
  uint64_t row_bytes = 0;
  uint64_t rows = 1;
  uint64_t src_pitch = 0;
  uint64_t dst_pitch = 0;
  bool dst_on_gpu = false;
};

// A plan's zero fill in GPU memory: rows of row_bytes at dst + i * pitch.
struct Fill2D {
  char *dst = nullptr;
  uint64_t row_bytes = 0;
  uint64_t rows = 1;
  uint64_t pitch = 0;
};

// Where a plan's source is for the version being run.
struct PlanSource {
  const char *data = nullptr;
  bool on_gpu = false;
  int ordinal = -1;
};

// A plan's sources for one run, each looked up when first asked for (plan.cpp's resolve): the GPU part asks
// for a launch's sources just before it launches, so the GPU copies the first shards while the host looks up
// the rest.
class PlanSources {
 public:
  PlanSources(size_t count, std::function<int(uint32_t, PlanSource *)> resolve)
      : found_(count), known_(count, false), resolve_(std::move(resolve)) {}
  size_t count() const { return found_.size(); }
  int get(uint32_t k, const PlanSource **out) {
    if (!known_[k]) {
      if (int rc = resolve_(k, &found_[k]); rc != 0) return rc;
      known_[k] = true;
    }
    *out = &found_[k];
    return 0;
  }

 private:
  std::vector<PlanSource> found_;
  std::vector<bool> known_;
  std::function<int(uint32_t, PlanSource *)> resolve_;
};

// What a plan keeps in the CUDA contexts it ran in (cuda/plan_run.cpp): its copies as the plan kernel's
// descriptors in device memory.
struct PlanGpu;

// Enqueues a plan's GPU copies and fills on stream, after the snapshot's GPU work: copies that the plan kernel
// reaches in a few launches (the first small, so that the GPU starts early), the rest one cuMemcpyAsync or
// cuMemcpy2DAsync each (peer, host). *gpu is made on first use and kept for the next runs; ordinal is a GPU of
// the copies, for a NULL stream in a thread without a context. Calls for one plan must not overlap
// (wb_plan_run's contract).
int run_plan_on_stream(wb_snapshot *snapshot, PlanGpu **gpu, const std::vector<PlanCopy> &copies,
                       const std::vector<Fill2D> &fills, PlanSources *sources, int ordinal, void *stream);

// GPU arms (core/arms.hpp, cuda/gpu_arms.hpp): a plan's run of a version not yet published, enqueued behind a
// wait on an arm slot. The version, the allocations' epoch its sources' addresses hold for, and the replica they
// are in (shm::kNone: R = 1).
struct GpuArm;
struct ArmTarget {
  uint64_t version = 0;
  uint64_t place = 0;
  uint32_t replica = 0;
};

// Enqueues on stream, behind a wait on a GPU arm of target.version, the plan's copies as its program in the
// stream's context runs them, from `sources` (where target says the version will be), and its fills. *out the
// arm, or nullptr when this run cannot be armed: the stream is NULL, the legacy or a blocking one; a plain
// topic's publisher is this process; no run made a program in its context yet, or some copy is outside the plan
// kernel (peer, host); stream memory operations are not available; no arm slot is free; the version was
// published meanwhile. Then the reader copies once it is. The caller asks only with GPU arms on.
int arm_plan_on_stream(wb_topic *topic, PlanGpu *gpu, const std::vector<Fill2D> &fills, PlanSources *sources,
                       int ordinal, void *stream, const ArmTarget &target, GpuArm **out);

// The armed version is published: true when the arm's copies are on the stream and run (a publisher claimed
// it), false when the reader copies (withdrawn now). Takes the arm.
bool finish_gpu_arm(wb_client *client, GpuArm *arm);

// The arm's hold ran out before its version came ($WEIGHTBUS_GPU_ARMS): withdraws it, so that its stream goes on
// with the copies skipped, and takes it: true. False when a publisher claimed it first (its version is out): the
// arm stays the caller's.
bool withdraw_gpu_arm(wb_client *client, GpuArm *arm);

// The reader will not copy the armed version: withdraws the arm, or waits until its copies are done when a
// publisher claimed it first. Takes the arm. NULL: nothing.
void drop_gpu_arm(wb_client *client, GpuArm *arm);

// Frees what run_plan_on_stream kept (NULL: nothing), in the contexts it was made in.
void destroy_plan_gpu(PlanGpu *gpu);

// Conversions (convert_params.h) into destinations on GPU `ordinal`, reading sources on that GPU, enqueued on
// stream after the snapshot's GPU work (cuda/convert_run.cpp). A plan passes gpu, where the descriptors are kept
// in device memory from its first run on (its destinations, scales and rectangles never change; only where its
// sources are does, which each launch carries); copy-into passes NULL, and the descriptors travel in the
// launches. rects[i].source indexes `sources`. Calls with one *gpu must not overlap (wb_plan_run's contract).
struct ConvertGpu;
int run_convert_on_stream(wb_snapshot *snapshot, ConvertGpu **gpu, const std::vector<wb_convert_dest> &dests,
                          const std::vector<wb_convert_rect> &rects, PlanSources *sources, int ordinal, void *stream);

// Frees what run_convert_on_stream kept (NULL: nothing).
void destroy_convert_gpu(ConvertGpu *gpu);

// Whether the conversion kernel runs on GPU `ordinal`: WB_OK, or WB_E_NO_CUDA saying why (a library built
// without nvcc, a GPU older than the PTX, a driver without room for the parameters), checked when a plan or a
// copy-into is checked, before anything runs.
int convert_kernel_available(int ordinal);

}  // namespace wb::cuda
