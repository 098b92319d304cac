// A plan's GPU copies on the reader's stream, after the version's GPU work. Made once per plan and context: the
// copies whose destination and source the plan kernel reaches (same GPU, device memory) become its descriptors,
// uploaded to device memory (plan_program.hpp), so that a run is a few launches whose parameters carry where
// this version's sources are, each launched as soon as its sources are looked up (the first small). The rest
// (peer, host, or where the kernel is not usable) are one cuMemcpyAsync or cuMemcpy2DAsync each; the driver picks
// the kind of copy from the memory types, device pointers of other GPUs working through unified addressing. Zero
// fills are cuMemsetD2D8Async.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <string>

#include "arms.hpp"
#include "client.hpp"
#include "client_state.hpp"
#include "copy.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "hooks.hpp"
#include "kernel_reach.hpp"
#include "plan_program.hpp"
#include "snapshot.hpp"
#include "topic.hpp"

namespace wb::cuda {

namespace {

int memcpy_2d_async(const Driver *d, const PlanCopy &c, const PlanSource &s, CUstream stream) {
  CUDA_MEMCPY2D p = {};
  const char *src = s.data + c.src_offset;
  if (s.on_gpu) {
    p.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    p.srcDevice = reinterpret_cast<CUdeviceptr>(src);
  } else {
    p.srcMemoryType = CU_MEMORYTYPE_HOST;
    p.srcHost = src;
  }
  if (c.dst_on_gpu) {
    p.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    p.dstDevice = reinterpret_cast<CUdeviceptr>(c.dst);
  } else {
    p.dstMemoryType = CU_MEMORYTYPE_HOST;
    p.dstHost = c.dst;
  }
  p.srcPitch = c.src_pitch;
  p.dstPitch = c.dst_pitch;
  p.WidthInBytes = c.row_bytes;
  p.Height = c.rows;
  return check(d->cuMemcpy2DAsync(&p, stream), "cuMemcpy2DAsync");
}

int copy_one(const Driver *d, const PlanCopy &c, const PlanSource &s, CUstream stream) {
  if (c.rows > 1) return memcpy_2d_async(d, c, s, stream);
  return memcpy_async(d, Copy{s.data + c.src_offset, c.dst, c.row_bytes, true, -1}, stream);
}

int fill_async(const Driver *d, const Fill2D &f, CUstream stream) {
  auto dst = reinterpret_cast<CUdeviceptr>(f.dst);
  if (f.rows == 1) return check(d->cuMemsetD8Async(dst, 0, f.row_bytes, stream), "cuMemsetD8Async");
  return check(d->cuMemsetD2D8Async(dst, f.pitch, 0, f.row_bytes, f.rows, stream), "cuMemsetD2D8Async");
}

// The bytes a copy spans from its first byte: (rows - 1) pitches and a row.
uint64_t span(uint64_t row_bytes, uint64_t rows, uint64_t pitch) { return (rows - 1) * pitch + row_bytes; }

}  // namespace

// A program's launches and their descriptors in device memory.
struct Uploaded {
  PlanProgram program;
  CUdeviceptr memory = 0;  // the descriptors, then the first chunks
};

// A plan's program in one context.
struct Program {
  CUcontext context = nullptr;
  int ordinal = -1;
  PlanKernel kernel;  // kernel.full nullptr: every copy goes one at a time
  // The copies in the kernel, as two programs: `ramped` for runs from the host, whose small first launches start
  // the GPU while the host looks up the rest; `whole` (made on the first armed run) for armed runs, whose
  // launches are all enqueued before the version exists, so that fewer launches (as few as the kernel's room
  // for sources allows) spare the GPU a launch's tail and start each.
  std::vector<PlanCopy> kernel_copies;
  Uploaded ramped, whole;
  std::vector<uint32_t> per_copy;      // the plan's copies outside the program
  std::vector<uint64_t> source_bytes;  // per source: the bytes the program reads from its address (0: none)
  // Per source, the last addresses found reachable: a source's address is one of its replicas', so a few
  // remembered spare most runs the driver's query.
  std::vector<std::array<const char *, 4>> reachable;
  std::unique_ptr<wb_plan_params> params = std::make_unique<wb_plan_params>();
  CUdeviceptr flags = 0;  // armed runs' guard flags, one per arm slot of a topic (made on the first armed run)
};

struct PlanGpu {
  std::mutex mutex;  // wb_plan_run's callers do not overlap; this only keeps the programs' list consistent
  std::vector<std::unique_ptr<Program>> programs;
};

namespace {

// Uploads u's program's descriptors and first chunks into memory it allocates (none for an empty program).
// On failure it frees that memory and leaves u->memory 0, so a caller only drops the program.
int upload_program(const Driver *d, Uploaded *u) {
  if (u->program.copies.empty()) return WB_OK;
  const size_t descriptors = u->program.copies.size() * sizeof(wb_plan_copy);
  const size_t bytes = descriptors + u->program.first_chunks.size() * sizeof(uint32_t);
  int rc = check(d->cuMemAlloc(&u->memory, bytes), "cuMemAlloc");
  if (rc == WB_OK) {
    rc = upload(d, u->memory,
                {{u->program.copies.data(), descriptors}, {u->program.first_chunks.data(), bytes - descriptors}});
    if (rc != WB_OK) d->cuMemFree(u->memory);
  }
  if (rc != WB_OK) u->memory = 0;
  return rc;
}

// Builds the program of `copies` in context (current), with the sources of the first run: the kernel takes a
// copy whose destination it reaches and whose source is device memory of this GPU that it reaches.
int build(const Driver *d, ClientState *state, CUcontext context, const std::vector<PlanCopy> &copies,
          PlanSources *sources, Program *p) {
  p->context = context;
  int rc = context_ordinal(context, &p->ordinal);
  if (rc != WB_OK) return rc;
  p->kernel = state->copy_kernel.plan_kernel(context);
  p->source_bytes.assign(sources->count(), 0);
  p->reachable.assign(sources->count(), {});
  KernelReach reach(d, p->ordinal);
  std::vector<PlanCopy> kernel;
  std::vector<uint32_t> origin;
  for (uint32_t i = 0; i < copies.size(); ++i) {
    const PlanCopy &c = copies[i];
    const PlanSource *found;
    if ((rc = sources->get(c.source, &found)) != WB_OK) return rc;
    const PlanSource &s = *found;
    const uint64_t src_end = c.src_offset + span(c.row_bytes, c.rows, c.src_pitch);
    if (p->kernel.full == nullptr || !c.dst_on_gpu || !s.on_gpu || s.ordinal != p->ordinal || !kernel_holds(c) ||
        !reach(c.dst, span(c.row_bytes, c.rows, c.dst_pitch)) || !reach(s.data, src_end)) {
      p->per_copy.push_back(i);
      continue;
    }
    p->source_bytes[c.source] = std::max(p->source_bytes[c.source], src_end);
    p->reachable[c.source][0] = s.data;  // just checked
    kernel.push_back(c);
    origin.push_back(i);
  }
  p->ramped.program = make_program(kernel);
  for (uint32_t &o : p->ramped.program.origin) o = origin[o];
  p->kernel_copies = std::move(kernel);
  return upload_program(d, &p->ramped);
}

// Whether the kernel reaches every source of launch l at this run's addresses, looked up now (another replica's
// address than last time is asked of the driver once, then remembered).
int sources_reached(const Driver *d, Program *p, const PlanLaunch &l, PlanSources *sources, bool *reached) {
  KernelReach reach(d, p->ordinal);
  *reached = true;
  for (uint32_t k : l.sources) {
    const PlanSource *s;
    if (int rc = sources->get(k, &s); rc != WB_OK) return rc;
    auto &known = p->reachable[k];
    if (std::find(known.begin(), known.end(), s->data) != known.end()) continue;
    if (!s->on_gpu || s->ordinal != p->ordinal || !reach(s->data, p->source_bytes[k])) {
      *reached = false;
      continue;
    }
    std::rotate(known.rbegin(), known.rbegin() + 1, known.rend());
    known[0] = s->data;
  }
  return WB_OK;
}

// Launch l of u (p->ramped or p->whole). guard: 0, or an armed run's flag (wb_plan_params.guard).
int launch(const Driver *d, Program *p, const Uploaded &u, const PlanLaunch &l, PlanSources *sources,
           CUstream stream, CUdeviceptr guard = 0) {
  wb_plan_params &params = *p->params;
  params.guard = guard;
  params.copies = u.memory + l.first * sizeof(wb_plan_copy);
  params.first_chunks = u.memory + u.program.copies.size() * sizeof(wb_plan_copy) + l.first * sizeof(uint32_t);
  params.count = l.count;
  for (size_t k = 0; k < l.sources.size(); ++k) {
    const PlanSource *s;
    if (int rc = sources->get(l.sources[k], &s); rc != WB_OK) return rc;
    params.sources[k] = reinterpret_cast<uintptr_t>(s->data);
  }
  size_t bytes = 0;  // the parameters up to the launch's kernel's room for sources
  CUfunction f = p->kernel.holding(uint32_t(l.sources.size()), &bytes);
  void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &params, CU_LAUNCH_PARAM_BUFFER_SIZE, &bytes, CU_LAUNCH_PARAM_END};
  return d->cuLaunchKernel(f, l.chunks, 1, 1, WB_PLAN_THREADS, 1, 1, 0, stream, nullptr, extra) == CUDA_SUCCESS
             ? WB_OK
             : WB_E_CUDA;
}

int copy_each(const Driver *d, const std::vector<PlanCopy> &copies, const uint32_t *index, size_t count,
              PlanSources *sources, CUstream stream) {
  for (size_t i = 0; i < count; ++i) {
    const PlanCopy &c = copies[index[i]];
    const PlanSource *s;
    int rc = sources->get(c.source, &s);
    if (rc != WB_OK || (rc = copy_one(d, c, *s, stream)) != WB_OK) return rc;
  }
  return WB_OK;
}

// The program's launches, each once its sources are looked up (a launch the kernel cannot run: one copy at a
// time; one the driver refuses: that, and the kernel is not used in the context again); then the copies
// outside the program.
int run_program(const Driver *d, ClientState *state, Program *p, const std::vector<PlanCopy> &copies,
                PlanSources *sources, CUstream stream) {
  int rc = WB_OK;
  for (const PlanLaunch &l : p->ramped.program.launches) {
    bool reached = false;
    if (p->kernel.full != nullptr && (rc = sources_reached(d, p, l, sources, &reached)) != WB_OK) return rc;
    if (reached) {
      if ((rc = launch(d, p, p->ramped, l, sources, stream)) == WB_OK) continue;
      if (rc != WB_E_CUDA) return rc;
      state->copy_kernel.plan_refused(p->context);
      p->kernel = PlanKernel{};
    }
    if ((rc = copy_each(d, copies, p->ramped.program.origin.data() + l.first, l.count, sources, stream)) != WB_OK) {
      return rc;
    }
  }
  return copy_each(d, copies, p->per_copy.data(), p->per_copy.size(), sources, stream);
}

}  // namespace

int run_plan_on_stream(wb_snapshot *snapshot, PlanGpu **gpu, const std::vector<PlanCopy> &copies,
                       const std::vector<Fill2D> &fills, PlanSources *sources, int ordinal, void *stream) {
  const Driver *d = nullptr;
  ClientState *state = nullptr;
  CUcontext context = nullptr;
  ContextGuard guard;
  int rc = driver(&d);
  if (rc != WB_OK || (rc = client_state(snapshot->topic->client, &state)) != WB_OK ||
      (rc = stream_context(stream, ordinal, &context)) != WB_OK || (rc = guard.push(context)) != WB_OK ||
      (rc = wb_snapshot_wait_stream(snapshot, stream)) != WB_OK) {
    return rc;
  }
  if (*gpu == nullptr) *gpu = new PlanGpu;
  Program *p = nullptr;
  {
    std::lock_guard lock((*gpu)->mutex);
    for (auto &program : (*gpu)->programs) {
      if (program->context == context) p = program.get();
    }
    if (p == nullptr) {
      auto made = std::make_unique<Program>();
      // A program that fails to build is dropped at once (its upload frees its memory); the next run tries again.
      if ((rc = build(d, state, context, copies, sources, made.get())) != WB_OK) return rc;
      p = made.get();
      (*gpu)->programs.push_back(std::move(made));
    }
  }
  auto s = static_cast<CUstream>(stream);
  if ((rc = run_program(d, state, p, copies, sources, s)) != WB_OK) return rc;
  for (const Fill2D &f : fills) {
    if ((rc = fill_async(d, f, s)) != WB_OK) return rc;
  }
  return WB_OK;
}

namespace {

// The program of context, if a run made one, that an armed run can carry out: every copy in the plan kernel,
// with the guard loaded, and every source where the kernel reaches it. Else nullptr.
int armable_program(const Driver *d, PlanGpu *gpu, CUcontext context, PlanSources *sources, Program **out) {
  *out = nullptr;
  Program *p = nullptr;
  {
    std::lock_guard lock(gpu->mutex);
    for (auto &program : gpu->programs) {
      if (program->context == context) p = program.get();
    }
  }
  if (p == nullptr || p->kernel.full == nullptr || p->kernel.guard == nullptr || !p->per_copy.empty() ||
      p->ramped.program.launches.empty()) {
    return WB_OK;
  }
  if (p->whole.program.launches.empty()) {
    p->whole.program = make_program(p->kernel_copies, WB_PLAN_MAX_SOURCES);
    if (int rc = upload_program(d, &p->whole); rc != WB_OK) {
      p->whole = Uploaded{};  // the next armed run tries again
      return rc;
    }
  }
  for (const PlanLaunch &l : p->whole.program.launches) {
    bool reached = false;
    if (int rc = sources_reached(d, p, l, sources, &reached); rc != WB_OK || !reached) return rc;
  }
  if (p->flags == 0) {
    if (int rc = check(d->cuMemAlloc(&p->flags, shm::kArmsPerTopic * sizeof(uint32_t)), "cuMemAlloc"); rc != WB_OK) {
      return rc;
    }
  }
  *out = p;
  return WB_OK;
}

// Enqueues the armed run: the wait on the arm's word, the guard, the program's launches reading the flag, the
// fills, and the event after them.
int enqueue_armed(const Driver *d, Program *p, GpuArm *arm, CUdeviceptr word, uint64_t token,
                  const std::vector<Fill2D> &fills, PlanSources *sources, CUstream stream) {
  CUdeviceptr flag = p->flags + arm->index * sizeof(uint32_t);
  int rc = check(d->cuStreamWaitValue64(stream, word, token, CU_STREAM_WAIT_VALUE_GEQ), "cuStreamWaitValue64");
  if (rc != WB_OK) return rc;
  void *args[] = {&word, &token, &flag};
  if ((rc = check(d->cuLaunchKernel(p->kernel.guard, 1, 1, 1, 1, 1, 1, 0, stream, args, nullptr), "cuLaunchKernel")) !=
      WB_OK) {
    return rc;
  }
  for (const PlanLaunch &l : p->whole.program.launches) {
    if ((rc = launch(d, p, p->whole, l, sources, stream, flag)) != WB_OK) {
      return fail(rc, "an armed plan launch was refused");
    }
  }
  for (const Fill2D &f : fills) {
    if ((rc = fill_async(d, f, stream)) != WB_OK) return rc;
  }
  if ((rc = check(d->cuEventCreate(&arm->passed, CU_EVENT_DISABLE_TIMING), "cuEventCreate")) != WB_OK) return rc;
  return check(d->cuEventRecord(arm->passed, stream), "cuEventRecord");
}

}  // namespace

int arm_plan_on_stream(wb_topic *topic, PlanGpu *gpu, const std::vector<Fill2D> &fills, PlanSources *sources,
                       int ordinal, void *stream, const ArmTarget &target, GpuArm **out) {
  *out = nullptr;
  // A plain topic's publisher in this process: its stream's write and this stream's wait would share its queues.
  if (topic->entry->ranks == 0 && topic->entry->publisher_pid.load() == uint32_t(getpid())) return WB_OK;
  const Driver *d = nullptr;
  ClientState *state = nullptr;
  CUcontext context = nullptr;
  ContextGuard guard;
  unsigned int flags = 0;
  int rc = driver(&d);
  // Not on the legacy default stream (nor a blocking one): a wait there would hold up the context's other work.
  if (rc != WB_OK || gpu == nullptr || stream == nullptr || stream == CU_STREAM_LEGACY ||
      stream == CU_STREAM_PER_THREAD || (rc = client_state(topic->client, &state)) != WB_OK ||
      (rc = stream_context(stream, ordinal, &context)) != WB_OK || (rc = guard.push(context)) != WB_OK ||
      (rc = check(d->cuStreamGetFlags(static_cast<CUstream>(stream), &flags), "cuStreamGetFlags")) != WB_OK ||
      !(flags & CU_STREAM_NON_BLOCKING)) {
    return rc;
  }
  Program *p = nullptr;
  if ((rc = armable_program(d, gpu, context, sources, &p)) != WB_OK || p == nullptr) return rc;
  std::unique_ptr<GpuArm> arm;
  state->gpu_arms.arm(topic->slot, target.version, target.place, target.replica, &arm);
  if (arm == nullptr) return WB_OK;
  arm->context = context;
  shm::ArmSlot &slot = state->gpu_arms.slot(*arm);
  CUdeviceptr word = 0;
  if ((rc = state->events.device_address(context, slot.word, &word)) == WB_OK && word != 0) {
    rc = enqueue_armed(d, p, arm.get(), word, arms::token(arm->state, target.version), fills, sources,
                       static_cast<CUstream>(stream));
    if (rc == WB_OK) {
      arm->enqueued = true;
      *out = arm.release();
      return WB_OK;
    }
  }
  // Not armed after all: a wait enqueued must pass (withdrawn: token + 1, or claimed: the token comes), and the
  // slot is free once the stream is past it.
  std::string message = rc == WB_OK ? "" : wb_last_error();
  arms::withdraw(slot, arm->state);
  d->cuStreamSynchronize(static_cast<CUstream>(stream));
  state->gpu_arms.drop(std::move(arm));
  return rc == WB_OK ? WB_OK : fail(rc, "%s", message.c_str());
}

void destroy_plan_gpu(PlanGpu *gpu) {
  if (gpu == nullptr) return;
  const Driver *d = nullptr;
  if (driver(&d) == WB_OK) {
    for (auto &p : gpu->programs) {
      ContextGuard guard;
      if (guard.push(p->context) != WB_OK) continue;
      if (p->ramped.memory != 0) d->cuMemFree(p->ramped.memory);
      if (p->whole.memory != 0) d->cuMemFree(p->whole.memory);
      if (p->flags != 0) d->cuMemFree(p->flags);
    }
  }
  delete gpu;
}

}  // namespace wb::cuda
