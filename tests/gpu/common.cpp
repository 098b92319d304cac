#include "common.hpp"

#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <ctime>

#include "libcuda.hpp"

namespace gpu {

Cuda cu;

#define GPU_STR2(x) #x
#define GPU_STR(x) GPU_STR2(x)

void die(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  fprintf(stderr, "FAIL (pid %d): ", int(getpid()));
  vfprintf(stderr, fmt, args);
  fprintf(stderr, "\n");
  va_end(args);
  fflush(stdout);
  _exit(1);
}

void check_cu(CUresult r, const char *call, const char *file, int line) {
  if (r == CUDA_SUCCESS) return;
  const char *name = nullptr;
  if (cu.cuGetErrorName != nullptr) cu.cuGetErrorName(r, &name);
  die("%s:%d: %s = %d (%s)", file, line, call, int(r), name ? name : "?");
}

void check_wb(int rc, int want, const char *call, const char *file, int line) {
  if (rc != want) {
    die("%s:%d: %s returned %d (%s), expected %d (%s): %s", file, line, call, rc, wb_strerror(rc), want,
        wb_strerror(want), wb_last_error());
  }
  if (want != WB_OK && wb_last_error()[0] == '\0') die("%s:%d: %s failed without a message", file, line, call);
}

// The library's loader (core/libcuda.hpp): the same file, $WEIGHTBUS_LIBCUDA or libcuda.so.1.
static bool load_driver() {
#define GPU_CUDA_RESOLVE(fn) \
  if (!wb::libcuda::resolve(GPU_STR(fn), &cu.fn)) return false;
  GPU_CUDA_FUNCTIONS(GPU_CUDA_RESOLVE)
#undef GPU_CUDA_RESOLVE
  return true;
}

bool gpu_present() {
  pid_t pid = spawn([] {
    int count = 0;
    return load_driver() && cu.cuInit(0) == CUDA_SUCCESS && cu.cuDeviceGetCount(&count) == CUDA_SUCCESS && count > 0
               ? 0
               : 77;
  });
  return wait_child(pid, 120) == 0;
}

void skip_without_gpu() {
  if (gpu_present()) return;
  printf("SKIP: no CUDA device\n");
  exit(0);
}

CUcontext init_cuda(const char *visible_devices, int ordinal) {
  if (visible_devices != nullptr) {
    setenv("CUDA_VISIBLE_DEVICES", visible_devices, 1);
  } else {
    unsetenv("CUDA_VISIBLE_DEVICES");
  }
  if (!load_driver()) die("cannot load %s", wb::libcuda::open().file.c_str());
  CU(cu.cuInit(0));
  CUdevice dev;
  CUcontext ctx;
  CU(cu.cuDeviceGet(&dev, ordinal));
  CU(cu.cuDevicePrimaryCtxRetain(&ctx, dev));
  CU(cu.cuCtxSetCurrent(ctx));
  return ctx;
}

CUdeviceptr map_vmm_chunks(uint64_t bytes, uint64_t granularities, uint64_t *chunk, uint64_t *total) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  size_t granularity;
  CU(cu.cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  *chunk = granularity * granularities;
  *total = (bytes + *chunk - 1) / *chunk * *chunk;
  CUdeviceptr base;
  CU(cu.cuMemAddressReserve(&base, *total, 0, 0, 0));
  for (uint64_t off = 0; off < *total; off += *chunk) {
    CUmemGenericAllocationHandle h;
    CU(cu.cuMemCreate(&h, *chunk, &prop, 0));
    CU(cu.cuMemMap(base + off, *chunk, 0, h, 0));
    CU(cu.cuMemRelease(h));
  }
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CU(cu.cuMemSetAccess(base, *total, &access, 1));
  return base;
}

static bool connectable(const std::string &path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  bool ok = connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

Broker::Broker(const std::vector<std::string> &extra_args) {
  char dir[] = "/tmp/wbgpu-XXXXXX";
  if (mkdtemp(dir) == nullptr) die("mkdtemp: %s", strerror(errno));
  dir_ = dir;
  socket_ = dir_ + "/b.sock";
  static std::atomic<int> counter{0};
  std::string name = "gputest-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  const char *env = getenv("WEIGHTBUSD");
  std::string binary = env != nullptr && env[0] != '\0' ? env : WB_TEST_BROKER;
  args_ = {binary, "--foreground", "--socket", socket_, "--name", name, "--log-level", "warn"};
  args_.insert(args_.end(), extra_args.begin(), extra_args.end());
  start();
}

void Broker::start() {
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that dies or is killed takes its broker along
    std::vector<char *> argv;
    for (std::string &a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    fprintf(stderr, "cannot run the broker %s: %s (set WEIGHTBUSD)\n", argv[0], strerror(errno));
    _exit(127);
  }
  for (int i = 0; i < 500 && !connectable(socket_); ++i) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) die("the broker %s exited at start", args_[0].c_str());
    usleep(10000);
  }
  if (!connectable(socket_)) die("the broker did not listen at %s within 5 s", socket_.c_str());
}

void Broker::kill_now() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

void Broker::kill_and_restart() {
  kill_now();
  unlink(socket_.c_str());
  start();
}

Broker::~Broker() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    wait_child(pid_, 10);
  }
  unlink(socket_.c_str());
  rmdir(dir_.c_str());
}

wb_client *attach(const std::string &socket, const char *name) {
  wb_attach_options opts = WB_ATTACH_OPTIONS_INIT;
  opts.socket_path = socket.c_str();
  opts.client_name = name;
  opts.timeout_ms = 20000;
  wb_client *client = nullptr;
  WB(wb_attach(&opts, &client));
  return client;
}

wb_topic *open_topic(wb_client *client, const char *name, int64_t timeout_ms) {
  wb_topic *topic = nullptr;
  int64_t until = now_ns() + timeout_ms * 1000000;
  while (wb_topic_open(client, name, &topic) == WB_E_NOT_FOUND && now_ns() < until) usleep(2000);
  if (topic == nullptr) WB(wb_topic_open(client, name, &topic));
  return topic;
}

// A child that crashes says where, so that run.sh's log shows more than an exit status.
static void crashed(int signum) {
  void *frames[64];
  int n = backtrace(frames, 64);
  dprintf(2, "CRASH (pid %d): signal %d; backtrace:\n", int(getpid()), signum);
  backtrace_symbols_fd(frames, n, 2);
  _exit(128 + signum);
}

pid_t spawn(const std::function<int()> &fn) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    signal(SIGSEGV, crashed);
    signal(SIGBUS, crashed);
    signal(SIGABRT, crashed);
    int status = fn();
    fflush(stdout);
    _exit(status);
  }
  return pid;
}

int wait_child(pid_t pid, int timeout_s) {
  for (int64_t until = now_ns() + int64_t(timeout_s) * 1000000000;;) {
    int status;
    pid_t got = waitpid(pid, &status, WNOHANG);
    if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (got < 0) return 1;
    if (now_ns() > until) {
      fprintf(stderr, "child %d ran over %d s: killed\n", int(pid), timeout_s);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return 124;
    }
    usleep(1000);
  }
}

void *shared_memory(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap: %s", strerror(errno));
  return p;
}

bool await(volatile uint64_t *word, uint64_t value, double timeout_s) {
  double until = now_s() + timeout_s;
  while (__atomic_load_n(word, __ATOMIC_ACQUIRE) < value) {
    if (now_s() > until) return false;
    usleep(50);
  }
  return true;
}

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double now_s() { return double(now_ns()) / 1e9; }

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t i = std::min(values.size() - 1, size_t(p / 100.0 * double(values.size())));
  return values[i];
}

void result(const char *test, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  printf("RESULT %s ", test);
  vprintf(fmt, args);
  printf("\n");
  va_end(args);
  fflush(stdout);
}

void Checks::operator()(const char *what, int status) {
  printf("%-*s %s\n", width_, what, status == 0 ? "ok" : "FAILED");
  failures_ += status != 0;
}

Model make_model(uint32_t tensors, uint64_t total_bytes) {
  Model m;
  // Sizes 1x, 2x, 3x, 4x a unit, and an odd small tensor every 8th, so that offsets are not all aligned alike.
  uint64_t weights = 0;
  for (uint32_t i = 0; i < tensors; ++i) weights += i % 8 == 7 ? 0 : 1 + i % 4;
  uint64_t unit = std::max<uint64_t>(total_bytes / 2 / std::max<uint64_t>(weights, 1) / 128 * 128, 128);
  m.names.resize(tensors);
  for (uint32_t i = 0; i < tensors; ++i) {
    m.names[i] = "layers." + std::to_string(i) + ".weight";
    m.elements.push_back(i % 8 == 7 ? 77 : unit * (1 + i % 4));
    m.bytes += m.elements.back() * 2;
  }
  for (uint32_t i = 0; i < tensors; ++i) {
    wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
    spec.name = m.names[i].c_str();
    spec.dtype = WB_DTYPE_BF16;
    spec.ndim = 1;
    spec.shape[0] = int64_t(m.elements[i]);
    m.specs.push_back(spec);
  }
  return m;
}

}  // namespace gpu
