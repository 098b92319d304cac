// The NCCL transport. Each end keeps two bucket buffers on its GPU and two streams: the source copies bucket k
// from the tensors into a buffer on its copy stream while its comm stream broadcasts bucket k - 1 from the
// other one; a sink receives on its comm stream and copies out on its copy stream. Events order each buffer's
// reuse. The communicator is nonblocking (ncclConfig_t.blocking = 0), so no NCCL call can hang: every wait
// polls ncclCommGetAsyncError, the peers' control connections and the deadline, and on any of them failing
// the communicator is aborted (ncclCommAbort) and the source builds a new one with the sinks that rejoin.
#include <unistd.h>

#include <cstring>

#include "failures.hpp"
#include "gpu_api.hpp"
#include "transport.hpp"

namespace wbrelay {

namespace {

class NcclTransport final : public Transport {
 public:
  NcclTransport(uint64_t bucket_size, int32_t device);
  ~NcclTransport() override;
  const char *name() const override { return "nccl"; }
  std::string new_token() override;
  void join(const GroupSpec &group, Deadline deadline) override;
  void leave() override;
  void send(const BucketIo &io, uint32_t to_rank, Deadline deadline) override;
  void receive(const BucketIo &io, bool broadcast, Deadline deadline) override;

 private:
  void enqueued(ncclResult_t rc, const char *call);
  void wait_stream(CUstream stream, Deadline deadline);
  void check_comm(const char *during);

  const GpuApi &api_;
  int32_t device_;
  CUdeviceptr buffer_[2] = {};
  CUstream copy_ = nullptr, comm_stream_ = nullptr;
  CUevent copied_[2] = {}, moved_[2] = {};
  ncclComm_t comm_ = nullptr;
  std::vector<int> peers_;
};

NcclTransport::NcclTransport(uint64_t bucket_size, int32_t device) : api_(gpu_api()), device_(device) {
  enter_device(device);
  for (int b = 0; b < 2; ++b) {
    cu_check(api_.cuMemAlloc(&buffer_[b], bucket_size), "cuMemAlloc (a bucket buffer: see --bucket)");
    cu_check(api_.cuEventCreate(&copied_[b], CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    cu_check(api_.cuEventCreate(&moved_[b], CU_EVENT_DISABLE_TIMING), "cuEventCreate");
  }
  cu_check(api_.cuStreamCreate(&copy_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  cu_check(api_.cuStreamCreate(&comm_stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
}

NcclTransport::~NcclTransport() {
  leave();
  for (int b = 0; b < 2; ++b) {
    api_.cuMemFree(buffer_[b]);
    api_.cuEventDestroy(copied_[b]);
    api_.cuEventDestroy(moved_[b]);
  }
  api_.cuStreamDestroy(copy_);
  api_.cuStreamDestroy(comm_stream_);
}

std::string NcclTransport::new_token() {
  ncclUniqueId id;
  ncclResult_t rc = api_.ncclGetUniqueId(&id);
  if (rc != ncclSuccess) throw RelayError(kExitFailure, std::string("ncclGetUniqueId: ") + api_.ncclGetErrorString(rc));
  return std::string(id.internal, sizeof(id.internal));
}

void NcclTransport::check_comm(const char *during) {
  ncclResult_t state = ncclSuccess;
  api_.ncclCommGetAsyncError(comm_, &state);
  if (state != ncclSuccess && state != ncclInProgress) {
    throw PeerError(std::string("NCCL failed during ") + during + ": " + api_.ncclGetErrorString(state) + " (" +
                    api_.ncclGetLastError(comm_) + ")");
  }
  for (int fd : peers_)
    if (peer_gone(fd)) throw PeerError(std::string("a peer closed its connection during ") + during);
}

void NcclTransport::join(const GroupSpec &group, Deadline deadline) {
  leave();
  if (group.token.size() != sizeof(ncclUniqueId::internal)) throw PeerError("malformed group: not an NCCL unique id");
  enter_device(device_);
  ncclUniqueId id;
  std::memcpy(id.internal, group.token.data(), sizeof(id.internal));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  peers_ = group.peers;
  ncclResult_t rc = api_.ncclCommInitRankConfig(&comm_, int(group.nranks), id, int(group.rank), &config);
  if (rc != ncclSuccess && rc != ncclInProgress) {
    comm_ = nullptr;
    throw PeerError(std::string("ncclCommInitRankConfig: ") + api_.ncclGetErrorString(rc));
  }
  for (;;) {
    ncclResult_t state = ncclInProgress;
    api_.ncclCommGetAsyncError(comm_, &state);
    if (state == ncclSuccess) return;
    check_comm("communicator set-up");
    if (deadline.passed()) throw PeerError("the NCCL communicator was not set up in time (a peer is missing)");
    usleep(1000);
  }
}

void NcclTransport::leave() {
  if (comm_ == nullptr) return;
  api_.ncclCommAbort(comm_);  // also ends kernels waiting for a dead peer, so the streams drain
  comm_ = nullptr;
  peers_.clear();
  Deadline drain = Deadline::after(10000);
  while ((api_.cuStreamQuery(copy_) == CUDA_ERROR_NOT_READY || api_.cuStreamQuery(comm_stream_) == CUDA_ERROR_NOT_READY) &&
         !drain.passed()) {
    usleep(1000);
  }
}

// A nonblocking communicator may answer ncclInProgress while it enqueues: poll until it is done.
void NcclTransport::enqueued(ncclResult_t rc, const char *call) {
  if (rc != ncclSuccess && rc != ncclInProgress) throw PeerError(std::string(call) + ": " + api_.ncclGetErrorString(rc));
  ncclResult_t state = rc;
  while (state == ncclInProgress) {
    api_.ncclCommGetAsyncError(comm_, &state);
    if (state != ncclSuccess && state != ncclInProgress) throw PeerError(std::string(call) + ": " + api_.ncclGetErrorString(state));
  }
}

void NcclTransport::wait_stream(CUstream stream, Deadline deadline) {
  for (;;) {
    CUresult q = api_.cuStreamQuery(stream);
    if (q == CUDA_SUCCESS) return;
    if (q != CUDA_ERROR_NOT_READY) cu_check(q, "cuStreamQuery");
    check_comm("a transfer");
    if (deadline.passed()) throw PeerError("a transfer did not finish in time (a peer stopped?)");
    usleep(50);
  }
}

void NcclTransport::send(const BucketIo &io, uint32_t to_rank, Deadline deadline) {
  if (comm_ == nullptr) throw PeerError("no NCCL communicator");
  enter_device(device_);  // libweightbus may have made another context current
  const std::vector<Bucket> &buckets = *io.buckets;
  for (size_t k = 0; k < buckets.size(); ++k) {
    int b = int(k % 2);
    if (k >= 2) cu_check(api_.cuStreamWaitEvent(copy_, moved_[b], 0), "cuStreamWaitEvent");
    for (const Piece &p : buckets[k].pieces) {
      cu_check(api_.cuMemcpyAsync(buffer_[b] + p.bucket_offset, CUdeviceptr(io.base[p.item] + p.item_offset), p.bytes, copy_),
               "cuMemcpyAsync");
    }
    cu_check(api_.cuEventRecord(copied_[b], copy_), "cuEventRecord");
    cu_check(api_.cuStreamWaitEvent(comm_stream_, copied_[b], 0), "cuStreamWaitEvent");
    void *data = reinterpret_cast<void *>(buffer_[b]);
    if (to_rank == 0) {
      enqueued(api_.ncclBroadcast(data, data, buckets[k].bytes, ncclChar, 0, comm_, comm_stream_), "ncclBroadcast");
    } else {
      enqueued(api_.ncclSend(data, buckets[k].bytes, ncclChar, int(to_rank), comm_, comm_stream_), "ncclSend");
    }
    cu_check(api_.cuEventRecord(moved_[b], comm_stream_), "cuEventRecord");
  }
  wait_stream(comm_stream_, deadline);
}

void NcclTransport::receive(const BucketIo &io, bool broadcast, Deadline deadline) {
  if (comm_ == nullptr) throw PeerError("no NCCL communicator");
  enter_device(device_);  // libweightbus may have made another context current
  const std::vector<Bucket> &buckets = *io.buckets;
  for (size_t k = 0; k < buckets.size(); ++k) {
    int b = int(k % 2);
    if (k >= 2) cu_check(api_.cuStreamWaitEvent(comm_stream_, copied_[b], 0), "cuStreamWaitEvent");
    void *data = reinterpret_cast<void *>(buffer_[b]);
    if (broadcast) {
      enqueued(api_.ncclBroadcast(data, data, buckets[k].bytes, ncclChar, 0, comm_, comm_stream_), "ncclBroadcast");
    } else {
      enqueued(api_.ncclRecv(data, buckets[k].bytes, ncclChar, 0, comm_, comm_stream_), "ncclRecv");
    }
    cu_check(api_.cuEventRecord(moved_[b], comm_stream_), "cuEventRecord");
    cu_check(api_.cuStreamWaitEvent(copy_, moved_[b], 0), "cuStreamWaitEvent");
    for (const Piece &p : buckets[k].pieces) {
      cu_check(api_.cuMemcpyAsync(CUdeviceptr(io.base[p.item] + p.item_offset), buffer_[b] + p.bucket_offset, p.bytes, copy_),
               "cuMemcpyAsync");
    }
    cu_check(api_.cuEventRecord(copied_[b], copy_), "cuEventRecord");
  }
  wait_stream(copy_, deadline);
}

}  // namespace

std::unique_ptr<Transport> make_nccl_transport(uint64_t bucket_size, int32_t device) {
  return std::make_unique<NcclTransport>(bucket_size, device);
}

}  // namespace wbrelay
