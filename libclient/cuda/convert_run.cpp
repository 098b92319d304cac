// Conversions on a GPU (hooks.hpp): the conversion kernels of convert_kernel.cu, launched on the caller's
// stream after the version's GPU work. Destinations go into sets of consecutive ones, each within what one
// launch's parameters carry (a plan's: WB_CONVERT_MAX_SOURCES sources; copy-into's: WB_CONVERT_BATCH
// destinations, rectangles and sources, all in the parameters), and each set into a few launches: MAIN, with
// ZERO before it and QUANT and SCALE after it where the set has per-tensor scales.
//
// A plan's descriptors never change, so they go to device memory on its first run in a context (as the plan
// kernel's copies do, plan_run.cpp); each launch carries only where this version's sources are. That rather than
// a device buffer of source addresses written on the stream before each launch: the parameters cost no copy of
// their own, no buffer shared by runs, and the first launch needs nothing ordered before it.
#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "client.hpp"
#include "client_state.hpp"
#include "convert_params.h"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "hooks.hpp"
#include "kernel_reach.hpp"
#include "snapshot.hpp"
#include "topic.hpp"

namespace wb::cuda {

namespace {

static_assert(sizeof(wb_convert_plan_params) <= 32764, "a plan's launch fits what CUDA 12.1+ allows");
static_assert(sizeof(wb_convert_batch_params) <= 32764, "a copy-into launch fits what CUDA 12.1+ allows");

// A grid's x dimension.
constexpr uint32_t kMaxBlocks = 0x7fffffff;

// The kernel counts a piece's 16-byte vectors and a row's elements in 32 bits (convert_kernel.cu's Span).
constexpr uint64_t kMaxPieceCount = 0x7fffffff;

// What one set may hold: a plan's launches carry its sources only; copy-into's everything.
struct Limits {
  uint32_t sources, dests, rects, jobs;
};
constexpr Limits kPlanLimits{WB_CONVERT_MAX_SOURCES, UINT32_MAX, UINT32_MAX, UINT32_MAX};
constexpr Limits kBatchLimits{WB_CONVERT_BATCH, WB_CONVERT_BATCH, WB_CONVERT_BATCH, WB_CONVERT_BATCH};

struct Launch {
  uint32_t phase = 0;
  uint32_t first_job = 0;  // in Program::jobs
  uint32_t jobs = 0;
  uint32_t blocks = 0;  // MAIN and QUANT; ZERO and SCALE run a thread per job
};

struct Set {
  uint32_t first_dest = 0, dests = 0;  // in Program::dests
  uint32_t first_rect = 0, rects = 0;  // in Program::rects
  std::vector<uint32_t> sources;       // the run's source indices, numbered in the set as the launches pass them
  std::vector<Launch> launches;
};

// The launches of a run's conversions. Each set's destinations, rectangles and jobs are numbered from its own
// first: a set's launches read them at its offsets, or copy them into their parameters.
struct Program {
  std::vector<wb_convert_dest> dests;
  std::vector<wb_convert_rect> rects;
  std::vector<wb_convert_job> jobs;
  std::vector<Set> sets;
  std::vector<uint64_t> source_bytes;  // per source of the run: the bytes read from its address
  std::vector<uint32_t> source_align;  // and the element size its address must be a multiple of
};

bool fp8(unsigned dtype) { return dtype == WB_CONVERT_E4M3 || dtype == WB_CONVERT_E5M2; }

// The checks of convert.cpp's describe, again where a mistake would cost a kernel's bad access (which kills
// the context) rather than an error: the pair and layout, the groups, the rectangles inside the view and
// reading known sources, and addresses aligned for their elements.
int check_dest(const wb_convert_dest &d, size_t i, const std::vector<wb_convert_rect> &rects, size_t sources) {
  const bool from_float = d.src_dtype == WB_CONVERT_BF16 || d.src_dtype == WB_CONVERT_F16 ||
                          d.src_dtype == WB_CONVERT_F32;
  const bool scaled = d.layout == WB_CONVERT_SCALE_TENSOR || d.layout == WB_CONVERT_SCALE_CHANNEL ||
                      d.layout == WB_CONVERT_SCALE_BLOCK;
  if (!(from_float && fp8(d.dst_dtype) && scaled) &&
      !(d.src_dtype == WB_CONVERT_F32 && d.dst_dtype == WB_CONVERT_BF16 && d.layout == WB_CONVERT_SCALE_NONE)) {
    return fail(WB_E_DTYPE, "conversion %zu: dtype %u to %u with scale layout %u is none of the conversions", i,
                d.src_dtype, d.dst_dtype, d.layout);
  }
  if (d.group_rows == 0 || d.group_cols == 0 || uint64_t(d.first_rect) + d.rect_count > rects.size()) {
    return fail(WB_E_INVAL, "conversion %zu: groups of %llu x %llu, or rectangles %u..%u of %zu", i,
                (unsigned long long)d.group_rows, (unsigned long long)d.group_cols, d.first_rect,
                d.first_rect + d.rect_count, rects.size());
  }
  const uint64_t es = wb_dtype_size(int32_t(d.src_dtype)), ds = wb_dtype_size(int32_t(d.dst_dtype));
  unsigned long long piece_rows, piece_cols;
  wb_convert_piece_shape(&d, &piece_rows, &piece_cols);
  const uint64_t rows = std::min<uint64_t>(piece_rows, d.rows), cols = std::min<uint64_t>(piece_cols, d.cols);
  const uint64_t vectors_per_row = (cols + 2 * (16 / es) - 2) / (16 / es);  // the most any alignment needs
  if (cols > kMaxPieceCount || (rows > 0 && vectors_per_row > kMaxPieceCount / rows)) {
    return fail(WB_E_SIZE, "conversion %zu: groups of %llu x %llu elements; the conversion kernel takes groups of "
                "at most 2^31 vectors of 16 bytes, rows of at most 2^31 elements", i, (unsigned long long)rows,
                (unsigned long long)cols);
  }
  if (d.dst % ds != 0 || (d.layout != WB_CONVERT_SCALE_NONE && d.scale % sizeof(float) != 0)) {
    return fail(WB_E_INVAL, "conversion %zu: dst %p or scale %p is not aligned to its elements (%llu and 4 bytes)", i,
                reinterpret_cast<void *>(d.dst), reinterpret_cast<void *>(d.scale), (unsigned long long)ds);
  }
  for (uint32_t j = d.first_rect; j < d.first_rect + d.rect_count; ++j) {
    const wb_convert_rect &r = rects[j];
    if (r.row0 + r.rows > d.rows || r.col0 + r.cols > d.cols || r.source >= sources || r.src_offset % es != 0 ||
        r.src_pitch % es != 0) {
      return fail(WB_E_INVAL, "conversion %zu: rectangle %u ([%llu, %llu) x [%llu, %llu) from source %u at %llu, "
                  "pitch %llu) is outside the %llu x %llu view, of an unknown source or not aligned to its "
                  "%llu-byte elements", i, j, (unsigned long long)r.row0, (unsigned long long)(r.row0 + r.rows),
                  (unsigned long long)r.col0, (unsigned long long)(r.col0 + r.cols), r.source,
                  (unsigned long long)r.src_offset, (unsigned long long)r.src_pitch, (unsigned long long)d.rows,
                  (unsigned long long)d.cols, (unsigned long long)es);
    }
  }
  return WB_OK;
}

uint64_t dest_bytes(const wb_convert_dest &d) { return d.rows * d.cols * wb_dtype_size(int32_t(d.dst_dtype)); }

uint64_t scale_bytes(const wb_convert_dest &d) {
  if (d.layout == WB_CONVERT_SCALE_NONE) return 0;
  return d.layout == WB_CONVERT_SCALE_TENSOR ? sizeof(float) : wb_convert_groups(&d) * sizeof(float);
}

// One phase's jobs for the set's destinations, pieces(d) blocks each (0: none), in launches of at most
// max_jobs jobs and kMaxBlocks blocks.
template <typename Pieces>
void add_phase(Program *p, Set *set, uint32_t phase, uint32_t max_jobs, Pieces pieces) {
  Launch l;
  l.phase = phase;
  l.first_job = uint32_t(p->jobs.size());
  for (uint32_t k = 0; k < set->dests; ++k) {
    const uint64_t n = pieces(p->dests[set->first_dest + k]);
    for (uint64_t done = 0; done < n;) {
      if (l.jobs == max_jobs || l.blocks == kMaxBlocks) {
        set->launches.push_back(l);
        l.first_job = uint32_t(p->jobs.size());
        l.jobs = l.blocks = 0;
      }
      const uint64_t take = std::min<uint64_t>(n - done, kMaxBlocks - l.blocks);
      p->jobs.push_back(wb_convert_job{done, l.blocks, k});
      l.jobs++;
      l.blocks += uint32_t(take);
      done += take;
    }
  }
  if (l.jobs > 0) set->launches.push_back(l);
}

void add_launches(Program *p, Set *set, uint32_t max_jobs) {
  auto tensor = [](const wb_convert_dest &d) { return d.layout == WB_CONVERT_SCALE_TENSOR; };
  auto word = [&](const wb_convert_dest &d) -> uint64_t { return tensor(d) ? 1 : 0; };
  add_phase(p, set, WB_CONVERT_PHASE_ZERO, max_jobs, word);
  add_phase(p, set, WB_CONVERT_PHASE_MAIN, max_jobs, [](const wb_convert_dest &d) { return wb_convert_pieces(&d); });
  add_phase(p, set, WB_CONVERT_PHASE_QUANT, max_jobs,
            [&](const wb_convert_dest &d) { return tensor(d) ? wb_convert_pieces(&d) : 0; });
  add_phase(p, set, WB_CONVERT_PHASE_SCALE, max_jobs, word);
}

// The program of the conversions, checked, in sets within `limits`.
int make_program(const std::vector<wb_convert_dest> &dests, const std::vector<wb_convert_rect> &rects,
                 size_t source_count, const Limits &limits, Program *p) {
  p->source_bytes.assign(source_count, 0);
  p->source_align.assign(source_count, 1);
  // The current set's number of each source of the run (kUnnumbered: none yet), and one destination's sources:
  // all of them, and those the current set does not read yet. Kept across destinations: copy-into makes a
  // program on every call, of hundreds of destinations.
  constexpr uint32_t kUnnumbered = UINT32_MAX;
  std::vector<uint32_t> numbered(source_count, kUnnumbered), all, fresh;
  for (size_t i = 0; i < dests.size(); ++i) {
    const wb_convert_dest &d = dests[i];
    if (int rc = check_dest(d, i, rects, source_count); rc != WB_OK) return rc;
    all.clear();
    fresh.clear();
    for (uint32_t j = d.first_rect; j < d.first_rect + d.rect_count; ++j) {
      const uint32_t k = rects[j].source;
      if (std::find(all.begin(), all.end(), k) != all.end()) continue;
      all.push_back(k);
      if (numbered[k] == kUnnumbered) fresh.push_back(k);
    }
    Set *set = p->sets.empty() ? nullptr : &p->sets.back();
    if (set == nullptr || set->sources.size() + fresh.size() > limits.sources || set->dests + 1 > limits.dests ||
        uint64_t(set->rects) + d.rect_count > limits.rects) {
      if (all.size() > limits.sources || d.rect_count > limits.rects) {
        return fail(WB_E_SIZE, "conversion %zu reads %zu sources in %u rectangles; a launch of the conversion kernel "
                    "takes at most %u sources and %u rectangles", i, all.size(), d.rect_count, limits.sources,
                    limits.rects);
      }
      if (set != nullptr) {
        for (uint32_t k : set->sources) numbered[k] = kUnnumbered;
      }
      p->sets.emplace_back();
      set = &p->sets.back();
      set->first_dest = uint32_t(p->dests.size());
      set->first_rect = uint32_t(p->rects.size());
      fresh = all;
    }
    for (uint32_t k : fresh) {
      numbered[k] = uint32_t(set->sources.size());
      set->sources.push_back(k);
    }
    wb_convert_dest copy = d;
    copy.first_rect = set->rects;
    p->dests.push_back(copy);
    const uint64_t es = wb_dtype_size(int32_t(d.src_dtype));
    for (uint32_t j = d.first_rect; j < d.first_rect + d.rect_count; ++j) {
      wb_convert_rect r = rects[j];
      const uint64_t end = r.rows == 0 || r.cols == 0 ? 0 : r.src_offset + (r.rows - 1) * r.src_pitch + r.cols * es;
      p->source_bytes[r.source] = std::max(p->source_bytes[r.source], end);
      p->source_align[r.source] = std::max(p->source_align[r.source], uint32_t(es));
      r.source = numbered[r.source];
      p->rects.push_back(r);
    }
    set->dests++;
    set->rects += d.rect_count;
  }
  for (Set &set : p->sets) add_launches(p, &set, limits.jobs);
  return WB_OK;
}

// Whether kernels of the current context may write the destinations and their scales.
int check_dests_reached(KernelReach &reach, const std::vector<wb_convert_dest> &dests, int ordinal) {
  for (size_t i = 0; i < dests.size(); ++i) {
    const wb_convert_dest &d = dests[i];
    const uint64_t bytes = dest_bytes(d), scales = scale_bytes(d);
    if ((bytes > 0 && !reach(reinterpret_cast<void *>(d.dst), bytes)) ||
        (scales > 0 && !reach(reinterpret_cast<void *>(d.scale), scales))) {
      return fail(WB_E_INVAL, "conversion %zu: dst %p (%llu bytes) or scale %p (%llu bytes) is not device memory of "
                  "GPU %d (the stream's) that kernels may write", i, reinterpret_cast<void *>(d.dst),
                  (unsigned long long)bytes, reinterpret_cast<void *>(d.scale), (unsigned long long)scales, ordinal);
    }
  }
  return WB_OK;
}

// Whether the kernel may read source k at s for this run (reach is asked unless known says so).
int check_source(KernelReach &reach, const Program &p, uint32_t k, const PlanSource &s, int ordinal) {
  const uint64_t bytes = p.source_bytes[k];
  if (!s.on_gpu || s.ordinal != ordinal || reinterpret_cast<uintptr_t>(s.data) % p.source_align[k] != 0 ||
      !reach(s.data, bytes)) {
    return fail(WB_E_NO_CUDA, "conversion source %u at %p (%llu bytes) is not device memory of GPU %d (the "
                "stream's) aligned to its elements: conversions read their sources on the destination's GPU", k,
                static_cast<const void *>(s.data), (unsigned long long)bytes, ordinal);
  }
  return WB_OK;
}

int launch(const Driver *d, CUfunction function, void *params, const Launch &l, CUstream stream) {
  const bool per_job = l.phase == WB_CONVERT_PHASE_ZERO || l.phase == WB_CONVERT_PHASE_SCALE;
  const unsigned grid = per_job ? (l.jobs + WB_CONVERT_THREADS - 1) / WB_CONVERT_THREADS : l.blocks;
  void *args[] = {params};
  return check(d->cuLaunchKernel(function, grid, 1, 1, WB_CONVERT_THREADS, 1, 1, 0, stream, args, nullptr),
               "cuLaunchKernel (conversion kernel)");
}

// WB_E_NO_CUDA saying why the kernel does not run in a context of GPU ordinal.
int kernel_missing(int ordinal) {
  int rc = convert_kernel_available(ordinal);
  if (rc != WB_OK) return rc;
  return fail(WB_E_NO_CUDA, "the conversion kernel does not load in the stream's context (GPU %d)", ordinal);
}

// ---- copy-into: everything in the parameters -------------------------------------------------------------

// Runs the conversions with wb_convert_batch (function) in the current context, of GPU ordinal.
int run_batch(const Driver *d, CUfunction function, int ordinal, const std::vector<wb_convert_dest> &dests,
              const std::vector<wb_convert_rect> &rects, PlanSources *sources, CUstream stream) {
  Program p;
  int rc = make_program(dests, rects, sources->count(), kBatchLimits, &p);
  KernelReach reach(d, ordinal);
  if (rc != WB_OK || (rc = check_dests_reached(reach, dests, ordinal)) != WB_OK) return rc;
  auto params = std::make_unique<wb_convert_batch_params>();  // per call: calls may overlap on other streams
  for (const Set &set : p.sets) {
    std::copy_n(p.dests.begin() + set.first_dest, set.dests, params->dests);
    std::copy_n(p.rects.begin() + set.first_rect, set.rects, params->rects);
    for (size_t i = 0; i < set.sources.size(); ++i) {
      const PlanSource *s;
      if ((rc = sources->get(set.sources[i], &s)) != WB_OK ||
          (rc = check_source(reach, p, set.sources[i], *s, ordinal)) != WB_OK) {
        return rc;
      }
      params->sources[i] = reinterpret_cast<uintptr_t>(s->data);
    }
    for (const Launch &l : set.launches) {
      std::copy_n(p.jobs.begin() + l.first_job, l.jobs, params->jobs);
      params->count = l.jobs;
      params->phase = l.phase;
      if ((rc = launch(d, function, params.get(), l, stream)) != WB_OK) return rc;
    }
  }
  return WB_OK;
}

}  // namespace

// ---- a plan: descriptors in device memory ------------------------------------------------------------------

// A plan's conversions in one context.
struct ConvertProgram {
  CUcontext context = nullptr;
  int ordinal = -1;
  CUfunction function = nullptr;
  CUdeviceptr memory = 0;  // the destinations, then the rectangles, then the jobs
  Program program;
  // Per source, the last addresses found reachable: a source's address is one of its replicas', so a few
  // remembered spare most runs the driver's query (as plan_run.cpp does).
  std::vector<std::array<const char *, 4>> reachable;
  std::unique_ptr<wb_convert_plan_params> params = std::make_unique<wb_convert_plan_params>();
};

struct ConvertGpu {
  std::mutex mutex;  // wb_plan_run's callers do not overlap; this only keeps the programs' list consistent
  std::vector<std::unique_ptr<ConvertProgram>> programs;
};

namespace {

// Builds the program of the conversions in the current context (p's), with wb_convert_plan (p->function).
int build(const Driver *d, const std::vector<wb_convert_dest> &dests, const std::vector<wb_convert_rect> &rects,
          size_t source_count, ConvertProgram *p) {
  int rc = make_program(dests, rects, source_count, kPlanLimits, &p->program);
  if (rc != WB_OK) return rc;
  KernelReach reach(d, p->ordinal);
  if ((rc = check_dests_reached(reach, dests, p->ordinal)) != WB_OK) return rc;
  p->reachable.assign(source_count, {});
  const Program &g = p->program;
  const size_t dest_size = g.dests.size() * sizeof(wb_convert_dest);
  const size_t rect_size = g.rects.size() * sizeof(wb_convert_rect);
  const size_t job_size = g.jobs.size() * sizeof(wb_convert_job);
  if ((rc = check(d->cuMemAlloc(&p->memory, dest_size + rect_size + job_size), "cuMemAlloc")) != WB_OK) return rc;
  return upload(d, p->memory, {{g.dests.data(), dest_size}, {g.rects.data(), rect_size}, {g.jobs.data(), job_size}});
}

// The set's sources at this run's addresses into the parameters, each checked unless known reachable there.
int set_sources(const Driver *d, ConvertProgram *p, const Set &set, PlanSources *sources) {
  KernelReach reach(d, p->ordinal);
  for (size_t i = 0; i < set.sources.size(); ++i) {
    const uint32_t k = set.sources[i];
    const PlanSource *s;
    if (int rc = sources->get(k, &s); rc != WB_OK) return rc;
    auto &known = p->reachable[k];
    if (std::find(known.begin(), known.end(), s->data) == known.end()) {
      if (int rc = check_source(reach, p->program, k, *s, p->ordinal); rc != WB_OK) return rc;
      std::rotate(known.rbegin(), known.rbegin() + 1, known.rend());
      known[0] = s->data;
    }
    p->params->sources[i] = reinterpret_cast<uintptr_t>(s->data);
  }
  return WB_OK;
}

int run_program(const Driver *d, ConvertProgram *p, PlanSources *sources, CUstream stream) {
  const Program &g = p->program;
  const CUdeviceptr rects = p->memory + g.dests.size() * sizeof(wb_convert_dest);
  const CUdeviceptr jobs = rects + g.rects.size() * sizeof(wb_convert_rect);
  wb_convert_plan_params &params = *p->params;
  for (const Set &set : g.sets) {
    if (int rc = set_sources(d, p, set, sources); rc != WB_OK) return rc;
    params.dests = p->memory + set.first_dest * sizeof(wb_convert_dest);
    params.rects = rects + set.first_rect * sizeof(wb_convert_rect);
    for (const Launch &l : set.launches) {
      params.jobs = jobs + l.first_job * sizeof(wb_convert_job);
      params.count = l.jobs;
      params.phase = l.phase;
      if (int rc = launch(d, p->function, &params, l, stream); rc != WB_OK) return rc;
    }
  }
  return WB_OK;
}

// The plan's program in context, built on its first run there.
int program_of(const Driver *d, ClientState *state, CUcontext context, ConvertGpu *gpu,
               const std::vector<wb_convert_dest> &dests, const std::vector<wb_convert_rect> &rects,
               size_t source_count, ConvertProgram **out) {
  std::lock_guard lock(gpu->mutex);
  for (auto &program : gpu->programs) {
    if (program->context == context) {
      *out = program.get();
      return WB_OK;
    }
  }
  auto made = std::make_unique<ConvertProgram>();
  made->context = context;
  int rc = context_ordinal(context, &made->ordinal);
  if (rc != WB_OK) return rc;
  made->function = state->copy_kernel.convert_function(context, true);
  if (made->function == nullptr) return kernel_missing(made->ordinal);
  // A program that fails to build is freed at once, and the next run tries again.
  if ((rc = build(d, dests, rects, source_count, made.get())) != WB_OK) {
    if (made->memory != 0) d->cuMemFree(made->memory);
    return rc;
  }
  *out = made.get();
  gpu->programs.push_back(std::move(made));
  return WB_OK;
}

// ---- whether the kernel runs on a GPU ----------------------------------------------------------------------

// What loading the module on a GPU told, kept for the process: it does not change while the process runs.
struct Availability {
  int code = WB_OK;
  std::string message;
};

// Loads the module in the primary context of ordinal and looks for the conversion kernels. *found is set when
// the answer is the GPU's for good (not a failure to ask).
int probe(const Driver *d, int ordinal, bool *found) {
  CUcontext context = nullptr;
  ContextGuard guard;
  int rc = primary_context(ordinal, &context);
  if (rc != WB_OK || (rc = guard.push(context)) != WB_OK) return rc;
  *found = true;
  if ((rc = kernels_supported(d)) != WB_OK) return rc;
  CUmodule module = nullptr;
  const CUresult loaded = d->cuModuleLoadData(&module, convert_kernel_image(d));
  if (loaded != CUDA_SUCCESS) {
    *found = loaded != CUDA_ERROR_OUT_OF_MEMORY;
    rc = check(loaded, "cuModuleLoadData");
    return fail(rc == WB_E_NOMEM ? rc : WB_E_NO_CUDA, "the driver does not load the GPU kernels' PTX (%s); a driver "
                "older than the nvcc that built the library refuses it", std::string(wb_last_error()).c_str());
  }
  CUfunction function = nullptr;
  if (d->cuModuleGetFunction(&function, module, "wb_convert_plan") != CUDA_SUCCESS ||
      d->cuModuleGetFunction(&function, module, "wb_convert_batch") != CUDA_SUCCESS) {
    rc = fail(WB_E_NO_CUDA, "the library's conversion PTX has no conversion kernels");
  }
  d->cuModuleUnload(module);
  return rc;
}

}  // namespace

int convert_kernel_available(int ordinal) {
  static std::mutex mutex;
  static std::map<int, Availability> known;
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK) return rc;
  std::lock_guard lock(mutex);
  auto it = known.find(ordinal);
  if (it == known.end()) {
    bool found = false;
    rc = probe(d, ordinal, &found);
    if (!found) return rc;
    it = known.emplace(ordinal, Availability{rc, rc == WB_OK ? std::string() : std::string(wb_last_error())}).first;
  }
  if (it->second.code == WB_OK) return WB_OK;
  return fail(it->second.code, "conversions on GPU %d: %s", ordinal, it->second.message.c_str());
}

int run_convert_on_stream(wb_snapshot *snapshot, ConvertGpu **gpu, const std::vector<wb_convert_dest> &dests,
                          const std::vector<wb_convert_rect> &rects, PlanSources *sources, int ordinal, void *stream) {
  if (dests.empty()) return WB_OK;
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
  auto s = static_cast<CUstream>(stream);
  if (gpu == nullptr) {
    int context_gpu = -1;
    if ((rc = context_ordinal(context, &context_gpu)) != WB_OK) return rc;
    CUfunction function = state->copy_kernel.convert_function(context, false);
    if (function == nullptr) return kernel_missing(context_gpu);
    return run_batch(d, function, context_gpu, dests, rects, sources, s);
  }
  if (*gpu == nullptr) *gpu = new ConvertGpu;
  ConvertProgram *p = nullptr;
  if ((rc = program_of(d, state, context, *gpu, dests, rects, sources->count(), &p)) != WB_OK) return rc;
  return run_program(d, p, sources, s);
}

void destroy_convert_gpu(ConvertGpu *gpu) {
  if (gpu == nullptr) return;
  const Driver *d = nullptr;
  if (driver(&d) == WB_OK) {
    for (auto &p : gpu->programs) {
      ContextGuard guard;
      if (p->memory != 0 && guard.push(p->context) == WB_OK) d->cuMemFree(p->memory);
    }
  }
  delete gpu;
}

}  // namespace wb::cuda
