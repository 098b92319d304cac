// weightbus relay over NCCL between two GPUs of one host (issue 9), against a raw ncclBroadcast of the same
// bytes measured in the same run.
//
//   gpu-relay [--gib G] [--tensors T] [--versions V] [--bucket BYTES] [--timeout MS]
//
// Two brokers of different names stand in for two nodes. A trainer publishes topic "policy" (T bf16 CUDA
// tensors of G GiB in all, R = 2) into broker A on GPU 0; `weightbus relay` runs as the source beside A
// (CUDA_VISIBLE_DEVICES=0) and as the sink beside B (CUDA_VISIBLE_DEVICES=1). The trainer publishes versions
// 1..V in lock step with B: version v rewrites every tensor when v % 10 == 0 and a rotating quarter of them
// otherwise (so only those are sent). After each version the checker (the trainer's process, which sees both
// GPUs) finds v in B with the same metadata, every tensor's version number equal to A's, and the first,
// middle and last element of every tensor holding the pattern of the version that wrote it; after every 25th
// version and at the end it copies all of A and B to the host and compares them byte for byte.
//
// Throughput: the versions that rewrite every tensor, timed from the publish in A to the wake-up of a waiter
// on B, against one ncclBroadcast of the same byte count from GPU 0 to GPU 1 between two processes (measured
// first, while the GPUs are idle). Target: the relay >= 80% of raw. Then the failures, over NCCL: the sink
// stopped (SIGSTOP) makes the source drop the group within --timeout and go on; resumed, the sink catches up.
// The source killed (SIGKILL) leaves the sink serving its last version; a new source feeds it again.
//
// Exit status 3 when the throughput target is missed. Needs 2 GPUs, libnccl.so.2 where the loader finds it,
// and the CLI ($WEIGHTBUS_CLI, else the one of this build tree). NCCL_NVLS_ENABLE=0 is set for every process.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "common.hpp"
#include "gpu_api.hpp"

using namespace gpu;

namespace {

struct Options {
  double gib = 8;
  uint32_t tensors = 64;
  uint32_t versions = 100;
  std::string bucket = "512M";
  int64_t timeout_ms = 5000;
};

constexpr uint32_t kFloorIterations = 10;

// ---- the floor: ncclBroadcast of the same bytes, GPU 0 -> GPU 1, between two processes --------------------

struct FloorShared {
  ncclUniqueId id;
  uint64_t id_ready;
  double seconds;  // rank 1's median: from the end of a barrier to the bytes being in its buffer
};

void wait_idle(const wbrelay::GpuApi &a, CUstream s) {
  CUresult r;
  while ((r = a.cuStreamQuery(s)) == CUDA_ERROR_NOT_READY) {
  }
  wbrelay::cu_check(r, "cuStreamQuery");
}

void nccl_check(const wbrelay::GpuApi &a, ncclResult_t r, const char *call) {
  if (r != ncclSuccess) die("%s: %s", call, a.ncclGetErrorString(r));
}

int floor_rank(int rank, uint64_t bytes, FloorShared *sh) {
  try {
    const wbrelay::GpuApi &a = wbrelay::gpu_api();
    wbrelay::enter_device(0);
    if (rank == 0) {
      nccl_check(a, a.ncclGetUniqueId(&sh->id), "ncclGetUniqueId");
      __atomic_store_n(&sh->id_ready, 1, __ATOMIC_RELEASE);
    } else if (!await(&sh->id_ready, 1, 60)) {
      die("rank 0 made no NCCL id");
    }
    ncclComm_t comm;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    nccl_check(a, a.ncclCommInitRankConfig(&comm, 2, sh->id, rank, &config), "ncclCommInitRankConfig");
    CUdeviceptr buffer;
    CUstream stream;
    wbrelay::cu_check(a.cuMemAlloc(&buffer, bytes), "cuMemAlloc");
    wbrelay::cu_check(a.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    auto broadcast = [&](uint64_t n) {
      void *p = reinterpret_cast<void *>(buffer);
      nccl_check(a, a.ncclBroadcast(p, p, n, ncclChar, 0, comm, stream), "ncclBroadcast");
      wait_idle(a, stream);
    };
    broadcast(bytes);  // warm-up: connections and buffers
    std::vector<double> times;
    for (uint32_t k = 0; k < kFloorIterations; ++k) {
      broadcast(1);  // a barrier
      double start = now_s();
      broadcast(bytes);
      times.push_back(now_s() - start);
    }
    if (rank == 1) sh->seconds = percentile(times, 50);
    a.ncclCommAbort(comm);
    return 0;
  } catch (const std::exception &e) {
    die("%s", e.what());
  }
}

double measure_floor(uint64_t bytes) {
  auto *sh = static_cast<FloorShared *>(shared_memory(sizeof(FloorShared)));
  pid_t ranks[2];
  for (int r = 0; r < 2; ++r) {
    ranks[r] = spawn([&] {
      setenv("CUDA_VISIBLE_DEVICES", r == 0 ? "0" : "1", 1);
      return floor_rank(r, bytes, sh);
    });
  }
  int s0 = wait_child(ranks[0], 300), s1 = wait_child(ranks[1], 300);
  if (s0 != 0 || s1 != 0) die("the raw ncclBroadcast ranks exited %d and %d", s0, s1);
  return sh->seconds;
}

// ---- relay processes ------------------------------------------------------------------------------------------

std::string cli_path() {
  const char *env = getenv("WEIGHTBUS_CLI");
  return env != nullptr && env[0] != '\0' ? env : WB_TEST_CLI;
}

uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
    die("cannot find a free port: %s", strerror(errno));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// A `weightbus relay` process beside one broker, its output in log_dir/<role>.log. Started with fork and
// execve only (the caller has CUDA threads): the environment is built before the fork.
class Relay {
 public:
  Relay(const std::string &broker_socket, const char *role, int rank, const char *visible, const Options &o,
        uint16_t port, const std::string &log_path) : log_(log_path) {
    std::vector<std::string> args = {cli_path(), "--socket", broker_socket, "relay", "--topic", "policy",
                                     "--role", role, "--rank", std::to_string(rank), "--world", "2",
                                     "--rendezvous", "127.0.0.1:" + std::to_string(port),
                                     "--timeout", std::to_string(o.timeout_ms)};
    if (rank == 0) args.insert(args.end(), {"--bucket", o.bucket});
    std::vector<std::string> env;
    for (char **e = environ; *e != nullptr; ++e) {
      if (strncmp(*e, "CUDA_VISIBLE_DEVICES=", 21) != 0) env.push_back(*e);
    }
    env.push_back(std::string("CUDA_VISIBLE_DEVICES=") + visible);
    std::vector<char *> argv, envp;
    for (std::string &a : args) argv.push_back(a.data());
    for (std::string &e : env) envp.push_back(e.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("cannot open %s: %s", log_path.c_str(), strerror(errno));
    fflush(stdout);
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(fd, 1);
      dup2(fd, 2);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    close(fd);
  }
  ~Relay() {
    if (pid_ > 0) kill_now();
  }
  void signal(int signum) const { kill(pid_, signum); }
  // SIGTERM, then its exit status.
  int stop() {
    kill(pid_, SIGTERM);
    int status = wait_child(pid_, 30);
    pid_ = -1;
    return status;
  }
  void kill_now() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // Waits until the log contains text, at most timeout_s.
  bool await_log(const char *text, double timeout_s) const {
    for (double until = now_s() + timeout_s; now_s() < until; usleep(20000)) {
      if (log().find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

// ---- the trainer and checker ---------------------------------------------------------------------------------

class Trainer {
 public:
  Trainer(const Options &o, const std::string &socket_a, const std::string &socket_b);
  // Publishes version v in A (writing every tensor when all, else a rotating quarter), waits until B has it
  // and checks it there; returns the seconds from publish to the wake-up on B.
  double publish_and_follow(uint64_t v, bool all);
  // Returns the time (now_s) at which the written version was handed to the broker.
  double publish(uint64_t v, bool all);
  void await_in_b(uint64_t v, double timeout_s);
  uint64_t latest_in_b();
  void check_samples(uint64_t v);
  void compare_in_full(uint64_t v);
  const Model &model() const { return model_; }

 private:
  uint16_t read_element(const wb_tensor_info &info, uint64_t element);
  std::vector<char> copy_to_host(wb_snapshot *s);

  const Options &o_;
  Model model_;
  std::vector<uint64_t> written_;  // the version that last wrote each tensor
  std::vector<CUcontext> contexts_;
  CUstream stream_ = nullptr;
  wb_topic *a_ = nullptr;
  wb_client *client_b_ = nullptr;
  wb_topic *b_ = nullptr;
};

Trainer::Trainer(const Options &o, const std::string &socket_a, const std::string &socket_b)
    : o_(o), model_(make_model(o.tensors, uint64_t(o.gib * double(1ull << 30)))), written_(o.tensors, 0) {
  for (int ordinal = 1; ordinal >= 0; --ordinal) contexts_.insert(contexts_.begin(), init_cuda(nullptr, ordinal));
  CU(cu.cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING));
  wb_topic_options opts = WB_TOPIC_OPTIONS_INIT;
  opts.replicas = 2;
  WB(wb_topic_create(attach(socket_a, "relay-trainer"), "policy", &opts, &a_));
  WB(wb_tensor_alloc_cuda(a_, model_.specs.data(), o.tensors, 0));
  client_b_ = attach(socket_b, "relay-checker");
}

double Trainer::publish(uint64_t v, bool all) {
  wb_update *u;
  WB(wb_update_begin(a_, 30000, &u));
  for (uint32_t i = 0; i < o_.tensors; ++i) {
    if (!all && (i + v) % 4 != 0) continue;
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_update_tensor_at(u, i, &info));
    CU(cu.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(info.data), pattern(v, i), model_.elements[i], stream_));
    written_[i] = v;
  }
  CU(cu.cuStreamSynchronize(stream_));
  double start = now_s();
  uint64_t published = 0;
  WB(wb_update_publish(u, &v, sizeof(v), &published));
  if (published != v) die("A published version %llu, expected %llu", (unsigned long long)published, (unsigned long long)v);
  return start;
}

uint64_t Trainer::latest_in_b() {
  if (b_ == nullptr && wb_topic_open(client_b_, "policy", &b_) != WB_OK) return 0;
  uint64_t latest = 0;
  WB(wb_topic_latest(b_, &latest));
  return latest;
}

void Trainer::await_in_b(uint64_t v, double timeout_s) {
  if (b_ == nullptr) b_ = open_topic(client_b_, "policy", int64_t(timeout_s * 1000));
  uint64_t seen = 0;
  WB(wb_topic_latest(b_, &seen));
  for (double until = now_s() + timeout_s; seen < v;) {
    int64_t left_ms = int64_t((until - now_s()) * 1000);
    if (left_ms <= 0) die("version %llu did not reach B within %.0f s (B holds %llu)", (unsigned long long)v, timeout_s, (unsigned long long)seen);
    int rc = wb_topic_wait(b_, seen, left_ms, &seen);
    if (rc != WB_OK && rc != WB_E_TIMEOUT) WB(rc);
  }
  if (seen != v) die("B went from before version %llu to %llu", (unsigned long long)v, (unsigned long long)seen);
}

double Trainer::publish_and_follow(uint64_t v, bool all) {
  double start = publish(v, all);
  await_in_b(v, 60);
  double seconds = now_s() - start;
  check_samples(v);
  return seconds;
}

uint16_t Trainer::read_element(const wb_tensor_info &info, uint64_t element) {
  int32_t ordinal = -1;
  WB(wb_cuda_device_ordinal(info.device_uuid, &ordinal));
  CU(cu.cuCtxSetCurrent(contexts_[size_t(ordinal)]));
  uint16_t value = 0;
  CU(cu.cuMemcpyDtoH(&value, reinterpret_cast<CUdeviceptr>(info.data) + element * 2, 2));
  CU(cu.cuCtxSetCurrent(contexts_[0]));
  return value;
}

void Trainer::check_samples(uint64_t v) {
  wb_snapshot *s;
  WB(wb_snapshot_acquire(b_, v, 5000, &s));
  const void *metadata;
  uint32_t metadata_size;
  WB(wb_snapshot_metadata(s, &metadata, &metadata_size, nullptr));
  if (metadata_size != sizeof(v) || memcmp(metadata, &v, sizeof(v)) != 0) die("version %llu has other metadata in B", (unsigned long long)v);
  for (uint32_t i = 0; i < o_.tensors; ++i) {
    wb_tensor_info info = WB_TENSOR_INFO_INIT;
    WB(wb_snapshot_tensor_at(s, i, &info));
    if (info.version != written_[i]) {
      die("version %llu: tensor %u was written by version %llu in B, %llu in A", (unsigned long long)v, i,
          (unsigned long long)info.version, (unsigned long long)written_[i]);
    }
    uint64_t n = model_.elements[i];
    for (uint64_t e : {uint64_t(0), n / 2, n - 1}) {
      uint16_t got = read_element(info, e);
      if (got != pattern(written_[i], i)) {
        die("version %llu: tensor %u element %llu is %#x in B, expected %#x", (unsigned long long)v, i,
            (unsigned long long)e, got, pattern(written_[i], i));
      }
    }
  }
  WB(wb_snapshot_release(s));
}

std::vector<char> Trainer::copy_to_host(wb_snapshot *s) {
  std::vector<char> host(model_.bytes);
  std::vector<wb_copy_target> targets(o_.tensors, wb_copy_target WB_COPY_TARGET_INIT);
  uint64_t at = 0;
  for (uint32_t i = 0; i < o_.tensors; ++i) {
    targets[i].index = i;
    targets[i].dst = host.data() + at;
    targets[i].dst_bytes = model_.elements[i] * 2;
    at += targets[i].dst_bytes;
  }
  WB(wb_snapshot_copy_into(s, targets.data(), o_.tensors, stream_));
  CU(cu.cuStreamSynchronize(stream_));
  return host;
}

void Trainer::compare_in_full(uint64_t v) {
  wb_snapshot *in_a, *in_b;
  WB(wb_snapshot_acquire(a_, v, 5000, &in_a));
  WB(wb_snapshot_acquire(b_, v, 5000, &in_b));
  std::vector<char> bytes_a = copy_to_host(in_a), bytes_b = copy_to_host(in_b);
  if (bytes_a != bytes_b) {
    size_t at = size_t(std::mismatch(bytes_a.begin(), bytes_a.end(), bytes_b.begin()).first - bytes_a.begin());
    die("version %llu: B differs from A at byte %zu of %llu", (unsigned long long)v, at, (unsigned long long)model_.bytes);
  }
  const uint16_t *element = reinterpret_cast<const uint16_t *>(bytes_a.data());
  for (uint32_t i = 0; i < o_.tensors; ++i) {
    for (uint64_t e = 0; e < model_.elements[i]; ++e, ++element) {
      if (*element != pattern(written_[i], i)) die("version %llu: tensor %u element %llu is wrong in A", (unsigned long long)v, i, (unsigned long long)e);
    }
  }
  WB(wb_snapshot_release(in_a));
  WB(wb_snapshot_release(in_b));
  printf("version %llu: B equals A, %.2f GiB byte for byte\n", (unsigned long long)v, double(model_.bytes) / (1ull << 30));
}

struct Outcome {
  double relay_seconds;  // median, versions that rewrite every tensor
  uint64_t versions_checked;
};

void expect_log(const Relay &r, const char *text, double timeout_s, const char *what) {
  if (!r.await_log(text, timeout_s)) die("%s: no '%s' within %.0f s; its log:\n%s", what, text, timeout_s, r.log().c_str());
}

int trainer_process(const Options &o, const std::string &socket_a, const std::string &socket_b,
                    const std::string &logs, Outcome *out) {
  Trainer t(o, socket_a, socket_b);
  t.publish(1, true);
  uint16_t port = free_port();
  Relay source(socket_a, "source", 0, "0", o, port, logs + "/source.log");
  Relay sink(socket_b, "sink", 1, "1", o, port, logs + "/sink.log");
  t.await_in_b(1, 120);
  t.check_samples(1);
  std::vector<double> full;
  for (uint64_t v = 2; v <= o.versions; ++v) {
    double seconds = t.publish_and_follow(v, v % 10 == 0);
    if (v % 10 == 0) full.push_back(seconds);
    if (v % 25 == 0 || v == o.versions) t.compare_in_full(v);
  }
  out->relay_seconds = percentile(full, 50);
  out->versions_checked = o.versions;
  printf("%u versions relayed and checked; a full version (%.2f GiB) reaches B in %.2f ms (median)\n", o.versions,
         double(t.model().bytes) / (1ull << 30), out->relay_seconds * 1e3);

  // A stopped sink holds the source up no longer than --timeout; resumed, it catches up.
  uint64_t v = o.versions + 1;
  sink.signal(SIGSTOP);
  double stopped_at = now_s();
  t.publish(v, true);
  expect_log(source, "dropping the group", double(o.timeout_ms) / 1000 + 10, "the source with a stopped sink");
  printf("stopped sink: the source dropped the group after %.1f s\n", now_s() - stopped_at);
  if (t.latest_in_b() >= v) die("B has version %llu although its sink is stopped", (unsigned long long)v);
  sink.signal(SIGCONT);
  t.await_in_b(v, double(o.timeout_ms) / 1000 + 30);
  t.check_samples(v);
  t.compare_in_full(v);

  // A killed source: the sink says so and keeps serving; a new source feeds it again.
  source.kill_now();
  expect_log(sink, "lost the source", double(o.timeout_ms) / 1000 + 10, "the sink with a killed source");
  t.check_samples(v);
  Relay second(socket_a, "source", 0, "0", o, port, logs + "/source-2.log");
  for (uint64_t last = v + 5; ++v <= last;) t.publish_and_follow(v, v % 2 == 0);
  t.compare_in_full(v - 1);
  int source_status = second.stop(), sink_status = sink.stop();
  if (source_status != 0 || sink_status != 0) die("the relays exited %d (source) and %d (sink) on SIGTERM", source_status, sink_status);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--gib") {
      o.gib = atof(value.c_str());
    } else if (flag == "--tensors") {
      o.tensors = uint32_t(atoi(value.c_str()));
    } else if (flag == "--versions") {
      o.versions = uint32_t(atoi(value.c_str()));
    } else if (flag == "--bucket") {
      o.bucket = value;
    } else if (flag == "--timeout") {
      o.timeout_ms = atoll(value.c_str());
    } else {
      die("unknown flag %s", flag.c_str());
    }
  }
  if (o.tensors == 0 || o.tensors > 64 || o.versions < 10) die("--tensors must be 1..64 and --versions at least 10");
  skip_without_gpu();
  int gpus = 0;
  if (wait_child(spawn([&] {
                   init_cuda(nullptr);
                   CU(cu.cuDeviceGetCount(&gpus));
                   return gpus >= 2 ? 0 : 77;
                 }),
                 60) == 77) {
    printf("SKIP: the relay test needs 2 GPUs\n");
    return 0;
  }
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  uint64_t bytes = make_model(o.tensors, uint64_t(o.gib * double(1ull << 30))).bytes;
  double floor_s = measure_floor(bytes);
  printf("raw ncclBroadcast of %.2f GiB, GPU 0 -> GPU 1: %.2f ms (median of %u)\n", double(bytes) / (1ull << 30),
         floor_s * 1e3, kFloorIterations);
  Broker a, b;
  auto *out = static_cast<Outcome *>(shared_memory(sizeof(Outcome)));
  std::string logs = getenv("GPU_RELAY_LOGS") != nullptr ? getenv("GPU_RELAY_LOGS") : "/tmp";
  int status = wait_child(spawn([&] { return trainer_process(o, a.socket(), b.socket(), logs, out); }), 900);
  if (status != 0) return status;
  double relay_gbs = double(bytes) / out->relay_seconds / 1e9, raw_gbs = double(bytes) / floor_s / 1e9;
  bool met = relay_gbs >= 0.8 * raw_gbs;
  result("relay", "%s versions=%llu gib=%.2f bucket=%s relay_gbs=%.1f raw_broadcast_gbs=%.1f ratio_pct=%.1f",
         met ? "PASS" : "BELOW-80%", (unsigned long long)out->versions_checked, double(bytes) / (1ull << 30),
         o.bucket.c_str(), relay_gbs, raw_gbs, 100 * relay_gbs / raw_gbs);
  return met ? 0 : 3;
}
