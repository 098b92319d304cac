// What the GPU tests share: a private broker, child processes with timeouts, the CUDA driver (never linked:
// opened by the loader the library uses, core/libcuda.hpp, so that $WEIGHTBUS_LIBCUDA overrides it here too and
// these programs build and start on machines without a GPU), timing and result lines. No cmocka: the GPU hosts
// have none.
//
// CUDA is not fork-safe: a parent initialises CUDA never; its children do, after fork (and after setting
// CUDA_VISIBLE_DEVICES when they want to).
#pragma once

#include <cuda.h>
#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "weightbus/weightbus.h"

namespace gpu {

#define GPU_CUDA_FUNCTIONS(X)                                                                                          \
  X(cuInit)                                                                                                            \
  X(cuGetErrorName) X(cuDeviceGet) X(cuDeviceGetCount) X(cuDevicePrimaryCtxRetain) X(cuCtxSetCurrent)                  \
      X(cuCtxSynchronize) X(cuStreamCreate) X(cuStreamDestroy) X(cuStreamSynchronize) X(cuMemAlloc) X(cuMemFree)       \
          X(cuMemAllocHost) X(cuMemFreeHost) X(cuMemAllocManaged) X(cuMemAllocAsync) X(cuMemFreeAsync) X(cuMemGetInfo) \
              X(cuMemsetD16Async) X(cuMemsetD8Async) X(cuMemsetD8) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoH) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync)              \
                  X(cuMemCreate) X(cuMemRelease) X(cuMemAddressReserve) X(cuMemAddressFree) X(cuMemMap) X(cuMemUnmap)  \
                      X(cuMemSetAccess) X(cuMemGetAllocationGranularity) X(cuStreamWaitValue32) X(cuStreamWriteValue32)   \
                          X(cuStreamQuery) X(cuIpcGetMemHandle) X(cuIpcOpenMemHandle) X(cuIpcCloseMemHandle)

struct Cuda {
#define GPU_CUDA_POINTER(fn) decltype(&::fn) fn = nullptr;
  GPU_CUDA_FUNCTIONS(GPU_CUDA_POINTER)
#undef GPU_CUDA_POINTER
};
extern Cuda cu;

// Exits the process (status 1) with the failing call, its code and message.
[[noreturn]] void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void check_cu(CUresult r, const char *call, const char *file, int line);
void check_wb(int rc, int want, const char *call, const char *file, int line);
#define CU(call) ::gpu::check_cu((call), #call, __FILE__, __LINE__)
#define WB(call) ::gpu::check_wb((call), WB_OK, #call, __FILE__, __LINE__)
#define WB_EXPECT(call, want) ::gpu::check_wb((call), (want), #call, __FILE__, __LINE__)

// True when a GPU is usable. Probed in a child, so that the caller stays free of CUDA and may fork.
bool gpu_present();
// Call at the start of main: prints "SKIP: no CUDA device" and exits 0 when there is none.
void skip_without_gpu();
// In a child: sets CUDA_VISIBLE_DEVICES (nullptr: unset it), initialises CUDA and makes the primary context
// of device `ordinal` current. Returns that context.
CUcontext init_cuda(const char *visible_devices, int ordinal = 0);

// Reserves one address range of back-to-back VMM chunks on this process's GPU 0, each chunk its own
// cuMemCreate exportable as a POSIX fd and `granularities` times the minimum granularity, mapped read-write:
// at least `bytes` in whole chunks. Returns the range's base; *chunk and *total get the chunk and range sizes.
CUdeviceptr map_vmm_chunks(uint64_t bytes, uint64_t granularities, uint64_t *chunk, uint64_t *total);

// A private broker for one test: its own socket in a temporary directory. The binary is $WEIGHTBUSD, else
// the one of the build tree the test was built in.
class Broker {
 public:
  explicit Broker(const std::vector<std::string> &extra_args = {});
  ~Broker();
  const std::string &socket() const { return socket_; }
  void kill_now();
  // SIGKILL, then a new broker of the same name and socket, which adopts the segment.
  void kill_and_restart();

 private:
  void start();
  pid_t pid_ = -1;
  std::string dir_;
  std::string socket_;
  std::vector<std::string> args_;
};

wb_client *attach(const std::string &socket, const char *name);
// Opens topic name, retrying until it exists (at most timeout_ms).
wb_topic *open_topic(wb_client *client, const char *name, int64_t timeout_ms);

// Runs fn in a child process; its return value is the child's exit status.
pid_t spawn(const std::function<int()> &fn);
// Waits for a child at most timeout_s; kills it when it overruns. Returns its exit status (or 128 + signal).
int wait_child(pid_t pid, int timeout_s);

// Shared memory that survives fork, for flags and results between the processes of a test.
void *shared_memory(size_t bytes);
// Spins (sleeping 50 us) until *word reaches value, at most timeout_s; false on timeout.
bool await(volatile uint64_t *word, uint64_t value, double timeout_s);

double now_s();
int64_t now_ns();
double percentile(std::vector<double> values, double p);

// One line that tests/gpu/run.sh collects into its table: "RESULT <test> key=value ...".
void result(const char *test, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// The named checks of a test program, each judged by a child's exit status: prints the name (padded to width)
// and "ok" or "FAILED", and counts the failures for the RESULT line.
class Checks {
 public:
  explicit Checks(int width) : width_(width) {}
  void operator()(const char *what, int status);
  int failures() const { return failures_; }
  const char *verdict() const { return failures_ == 0 ? "PASS" : "FAIL"; }

 private:
  int width_;
  int failures_ = 0;
};

// A bf16 model: tensor i has elements[i] elements; sizes vary so that packing and offsets are exercised.
struct Model {
  std::vector<std::string> names;
  std::vector<uint64_t> elements;
  std::vector<wb_tensor_spec> specs;
  uint64_t bytes = 0;  // sum of the tensors' bytes
};
Model make_model(uint32_t tensors, uint64_t total_bytes);

// The 16-bit value every element of tensor i holds in version v: distinct for versions 0..1023 and tensors
// 0..63, so a byte of another version or tensor shows.
inline uint16_t pattern(uint64_t v, uint32_t i) { return uint16_t((v % 1024) << 6 | (i % 64)); }

}  // namespace gpu
