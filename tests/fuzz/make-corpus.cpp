// Writes the seed corpus of the fuzz harnesses: sessions that reach every control message the broker handles
// (accepted and refused), and segment headers. Run by make-corpus.sh; its output is checked in under corpus/.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "layout.hpp"
#include "peer_checks_input.hpp"
#include "protocol_generated.h"
#include "session.hpp"

namespace proto = wb::proto;
namespace shm = wb::shm;

namespace {

// A session being written: one record per message.
class Session {
 public:
  template <typename Body>
  Session &send(int client, flatbuffers::FlatBufferBuilder &b, flatbuffers::Offset<Body> body, int fds = 0,
                bool dev_null = false) {
    b.Finish(proto::CreateMessage(b, ++id_, proto::BodyTraits<Body>::enum_value, body.Union()));
    wb::fuzz::append_record(&bytes_, client, fds, dev_null, b.GetBufferPointer(), b.GetSize());
    b.Clear();
    return *this;
  }
  Session &attach(int client) {
    std::vector<uint32_t> fields = shm::fingerprint_words();
    return send(client, b_, proto::CreateAttachDirect(b_, shm::kLayoutVersion, &fields, 1, "seed"));
  }
  Session &create_topic(int client, const char *name, uint32_t replicas) {
    return send(client, b_, proto::CreateCreateTopicDirect(b_, name, replicas));
  }
  flatbuffers::FlatBufferBuilder &builder() { return b_; }
  const std::vector<uint8_t> &bytes() const { return bytes_; }

 private:
  flatbuffers::FlatBufferBuilder b_;
  std::vector<uint8_t> bytes_;
  uint32_t id_ = 0;
};

bool write_file(const std::string &path, const void *data, size_t size) {
  FILE *f = fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

flatbuffers::Offset<proto::AllocTensors> alloc_tensors(flatbuffers::FlatBufferBuilder &b, uint32_t topic) {
  std::vector<int64_t> shape{4, 4};
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs{
      proto::CreateTensorSpecDirect(b, "w", WB_DTYPE_F32, &shape),
      proto::CreateTensorSpecDirect(b, "b", WB_DTYPE_BF16, &shape)};
  return proto::CreateAllocTensorsDirect(b, topic, &specs);
}

Session host_tensors() {
  Session s;
  s.attach(0).create_topic(0, "policy", 2);
  auto &b = s.builder();
  s.send(0, b, alloc_tensors(b, 0));
  std::vector<int64_t> shape{2, 4}, strides{4, 1};
  s.send(0, b, proto::CreateCreateViewDirect(b, 0, "w.top", "w", WB_DTYPE_F32, 0, &shape, &strides));
  s.send(0, b, proto::CreateGetAllocation(b, 0));
  s.send(0, b, proto::CreateSubscribe(b, 0), 1);
  s.send(0, b, proto::CreatePublished(b, 0, 1));
  s.send(0, b, proto::CreateCloseTopic(b, 0));
  s.send(0, b, proto::CreateRemoveTopicDirect(b, "policy"));
  s.send(0, b, proto::CreateRemoveTopicDirect(b, "policy"));  // WB_E_NOT_FOUND
  return s;
}

Session reader_and_publisher() {
  Session s;
  s.attach(0).attach(1).create_topic(0, "policy", 1);
  auto &b = s.builder();
  s.send(0, b, alloc_tensors(b, 0));
  s.send(1, b, proto::CreateOpenTopicDirect(b, "policy"));
  s.send(1, b, alloc_tensors(b, 0));  // a reader: WB_E_ROLE
  std::vector<int64_t> shape{4}, strides{1};
  s.send(1, b, proto::CreateCreateViewDirect(b, 0, "b.row", "b", WB_DTYPE_BF16, 8, &shape, &strides));
  s.send(1, b, proto::CreateSubscribe(b, 0), 1, true);  // not a pipe: WB_E_INVAL
  s.send(1, b, proto::CreateCloseTopic(b, 0));           // WB_E_ROLE
  s.create_topic(1, "policy", 1);                        // WB_E_BUSY
  s.send(1, b, proto::CreateRemoveTopicDirect(b, "policy"));  // a publisher holds it: WB_E_BUSY
  return s;
}

Session legacy_cuda() {
  Session s;
  s.attach(0).attach(1).create_topic(0, "gpu", 1);
  auto &b = s.builder();
  std::vector<uint8_t> uuid(16, 7), handle(64, 1);
  s.send(0, b, proto::CreateRegisterCudaAllocationDirect(b, 0, 2, 1 << 20, &uuid, &handle, 0x7f0000000000, 0));
  std::vector<int64_t> shape{256, 256};
  std::vector<uint32_t> allocations{0};
  std::vector<uint64_t> offsets{0};
  std::vector<flatbuffers::Offset<proto::RegisteredTensor>> tensors{
      proto::CreateRegisteredTensorDirect(b, "w", WB_DTYPE_F16, &shape, &allocations, &offsets)};
  s.send(0, b, proto::CreateRegisterTensorsDirect(b, 0, &tensors));
  s.send(1, b, proto::CreateImportAllocation(b, 0, 0));
  s.send(1, b, proto::CreateReleaseAllocation(b, 0));
  s.send(0, b, proto::CreateRevokeAllocation(b, 0));
  return s;
}

Session vmm_cuda() {
  Session s;
  s.attach(0).attach(1).create_topic(0, "gpu", 2);
  auto &b = s.builder();
  std::vector<uint8_t> uuid(16, 9);
  s.send(0, b, proto::CreateRegisterCudaAllocationDirect(b, 0, 3, 8192, &uuid, nullptr, 0x7f0000000000, 2));
  std::vector<uint64_t> first{4096}, second{4096};
  s.send(0, b, proto::CreateAddAllocationChunksDirect(b, 0, 0, &first), 1, true);
  s.send(0, b, proto::CreateAddAllocationChunksDirect(b, 0, 1, &second), 1, true);
  std::vector<int64_t> shape{1024};
  std::vector<uint32_t> allocations{0, 0};
  std::vector<uint64_t> offsets{0, 4096};
  std::vector<flatbuffers::Offset<proto::RegisteredTensor>> tensors{
      proto::CreateRegisteredTensorDirect(b, "w", WB_DTYPE_F32, &shape, &allocations, &offsets)};
  s.send(0, b, proto::CreateRegisterTensorsDirect(b, 0, &tensors));
  s.send(1, b, proto::CreateImportAllocation(b, 0, 1));
  s.send(0, b, proto::CreateRevokeAllocation(b, 0));
  return s;
}

Session per_client_limits() {
  Session s;
  s.attach(0).create_topic(0, "a", 1).create_topic(0, "b", 1).create_topic(0, "c", 1).create_topic(0, "d", 1);
  auto &b = s.builder();
  for (int i = 0; i < 4; ++i) s.send(0, b, alloc_tensors(b, 0));
  return s;
}

Session before_attach() {
  Session s;
  auto &b = s.builder();
  s.send(0, b, proto::CreateOpenTopicDirect(b, "policy"));
  std::vector<uint32_t> wrong{1, 2, 3};
  s.send(0, b, proto::CreateAttachDirect(b, shm::kLayoutVersion, &wrong, 1, "old"));
  s.attach(0).attach(0);
  return s;
}

// Resuming a slot this broker never orphaned (refused), then as a plain attach after it.
Session resume_without_orphan() {
  Session s;
  auto &b = s.builder();
  std::vector<uint32_t> fields = shm::fingerprint_words(), imported{0, 7};
  s.send(0, b, proto::CreateAttachDirect(b, shm::kLayoutVersion, &fields, 1, "resumer", true, 0, 1, &imported));
  s.attach(0).create_topic(0, "policy", 2);
  return s;
}

flatbuffers::Offset<proto::AllocTensors> alloc_shard(flatbuffers::FlatBufferBuilder &b, uint32_t topic, int64_t row,
                                                     uint32_t flags) {
  std::vector<int64_t> shape{2, 4}, logical{4, 4}, offset{row, 0};
  auto region = proto::CreateShardRegionDirect(b, &logical, &offset, flags);
  std::vector<flatbuffers::Offset<proto::TensorSpec>> specs{
      proto::CreateTensorSpecDirect(b, "w", WB_DTYPE_F32, &shape, region)};
  return proto::CreateAllocTensorsDirect(b, topic, &specs);
}

// A model over two ranks: create and join, shards (overlapping, outside, the same box again), a seal refused for a
// gap and then accepted, a rank closed and taken over, a plain request on the sharded topic.
Session sharded() {
  Session s;
  auto &b = s.builder();
  s.attach(0).attach(1).attach(2);
  s.send(0, b, proto::CreateCreateTopicDirect(b, "model", 2, 2, 0));
  s.send(1, b, proto::CreateCreateTopicDirect(b, "model", 2, 3, 1));  // another rank count: WB_E_INVAL
  s.send(1, b, proto::CreateCreateTopicDirect(b, "model", 2, 2, 1));
  s.send(2, b, proto::CreateCreateTopicDirect(b, "model", 2, 2, 1));  // a live rank: WB_E_BUSY
  s.send(0, b, alloc_shard(b, 0, 0, 0));
  s.send(1, b, alloc_shard(b, 0, 1, 0));  // overlaps rank 0's: WB_E_LAYOUT
  s.send(1, b, alloc_shard(b, 0, 3, 0));  // outside [4, 4]: WB_E_SHAPE
  s.send(0, b, proto::CreateSealRank(b, 0));
  s.send(1, b, proto::CreateSealRank(b, 0));  // rows 2:4 uncovered: WB_E_LAYOUT
  s.send(1, b, alloc_shard(b, 0, 2, 0));
  s.send(1, b, alloc_shard(b, 0, 2, 0));      // the same box again: kept
  s.send(0, b, alloc_tensors(b, 0));          // no shard region on a sharded topic: WB_E_INVAL
  s.send(1, b, proto::CreateSealRank(b, 0));
  s.send(1, b, proto::CreateRankPublished(b, 0, 1));
  s.send(1, b, proto::CreateCloseTopic(b, 0));
  s.send(2, b, proto::CreateCreateTopicDirect(b, "model", 2, 2, 1));  // taken over
  s.send(2, b, alloc_shard(b, 0, 0, WB_SHARD_REPLICATED));              // after completion: WB_E_LAYOUT first
  s.send(2, b, proto::CreateCreateTopicDirect(b, "plain", 1, 0, 0));
  s.send(2, b, alloc_shard(b, 1, 0, 0));       // a shard on a plain topic: WB_E_INVAL
  s.send(2, b, proto::CreateSealRank(b, 1));   // a plain topic: WB_E_INVAL
  return s;
}

// A header as the broker writes it for small capacities; the harness maps the size it claims.
std::vector<uint8_t> header(const shm::Capacities &caps) {
  std::vector<uint8_t> bytes(sizeof(shm::Header));
  shm::write_header(*reinterpret_cast<shm::Header *>(bytes.data()), caps, 0, 0);
  return bytes;
}

// What a client or broker is handed, each case accepted or refused; the harness varies the fields.
std::vector<uint8_t> peer_checks(PeerChecksInput in, const char *name) {
  std::vector<uint8_t> bytes(sizeof(in));
  memcpy(bytes.data(), &in, sizeof(in));
  bytes.insert(bytes.end(), name, name + strlen(name));
  return bytes;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make-corpus DIR (writes DIR/fuzz-broker-messages/, DIR/fuzz-segment-header/ and "
            "DIR/fuzz-peer-checks/)\n");
    return 2;
  }
  std::string dir = argv[1];
  std::string messages = dir + "/fuzz-broker-messages/", headers = dir + "/fuzz-segment-header/";
  mkdir(messages.c_str(), 0755);
  mkdir(headers.c_str(), 0755);
  std::string peers = dir + "/fuzz-peer-checks/";
  mkdir(peers.c_str(), 0755);
  const std::pair<const char *, Session> sessions[] = {
      {"host-tensors", host_tensors()},   {"reader-and-publisher", reader_and_publisher()},
      {"legacy-cuda", legacy_cuda()},     {"vmm-cuda", vmm_cuda()},
      {"per-client-limits", per_client_limits()}, {"before-attach", before_attach()},
      {"resume-without-orphan", resume_without_orphan()}, {"sharded", sharded()},
  };
  bool ok = true;
  for (const auto &[name, session] : sessions) {
    ok &= write_file(messages + name, session.bytes().data(), session.bytes().size());
  }
  const std::pair<const char *, shm::Capacities> caps[] = {
      {"smallest", {1, 1, 1, 1, 1, 2, 1}}, {"small", {4, 32, 8, 4, 4, 4, 8}}, {"uneven", {3, 100, 7, 9, 5, 3, 5}}};
  for (const auto &[name, c] : caps) {
    std::vector<uint8_t> h = header(c);
    ok &= write_file(headers + name, h.data(), h.size());
  }
  const std::pair<const char *, std::vector<uint8_t>> checks[] = {
      {"all-ours", peer_checks({S_IFDIR | 0700, 1000, 1000, 1000, 42, 0600, 0}, "/run/user/1000/weightbus")},
      {"open-directory", peer_checks({S_IFDIR | 0777, 1000, 1000, 1000, 42, 0600, 0}, "/tmp/weightbus-1000")},
      {"sticky-tmp", peer_checks({S_IFDIR | 01777, 0, 1000, 1000, 42, 0600, 0}, "/tmp")},
      {"foreign-link", peer_checks({S_IFLNK | 0777, 65534, 1000, 65534, 7, 0666, 0}, "/tmp/weightbus-1000")},
      {"segment-0600", peer_checks({S_IFREG | 0600, 1000, 1000, 1000, 42, 0600, 0}, "the segment the broker sent")},
      {"allocation-0666", peer_checks({S_IFREG | 0666, 65534, 0, 0, 1, 0644, 0}, "allocation 3 the broker sent")},
      {"fifo", peer_checks({S_IFIFO | 0600, 0, 0, 65534, 1, 04600, 0}, "/dev/shm/weightbus-0-x.a0")},
  };
  for (const auto &[name, bytes] : checks) ok &= write_file(peers + name, bytes.data(), bytes.size());
  if (!ok) perror("make-corpus");
  return ok ? 0 : 1;
}
