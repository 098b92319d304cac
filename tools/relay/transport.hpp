// The byte movement of the relay, behind one interface: NCCL in production (nccl_transport.cpp), a TCP
// implementation over the control connections for hosts without GPUs and the CPU tests (tcp_transport.cpp).
//
// A group is the source (rank 0) and the sinks it serves now; the source makes a new one (a new generation)
// whenever a sink joins or fails. Within a group the source sends one version as a sequence of buckets, either
// to every member at once (broadcast) or to one member; the transport packs each bucket from the tensors'
// memory, moves it, and unpacks it into the sink's tensors, two buckets in flight. Every wait is bounded by a
// deadline and ends early when a member's control connection closes: then send/receive throw PeerError and
// the group must be left (which aborts what is in flight) before a new one is joined.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bucket_plan.hpp"
#include "net.hpp"

namespace wbrelay {

// Where the pieces of a plan come from (source) or go to (sink): item i of the plan is at base[i], in host
// memory or on the transport's GPU.
struct BucketIo {
  const std::vector<Bucket> *buckets;
  std::vector<char *> base;
};

struct GroupSpec {
  uint64_t generation = 0;
  uint32_t nranks = 0;
  uint32_t rank = 0;
  std::string token;       // made by the source's new_token(), the same for every member
  std::vector<int> peers;  // control connections: the source's to each sink in rank order; a sink's to the source
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char *name() const = 0;
  // Source, before each new group: what every member needs to join it (NCCL: a new unique id).
  virtual std::string new_token() = 0;
  // Every member of a group, at once; PeerError when it cannot be formed before the deadline.
  virtual void join(const GroupSpec &group, Deadline deadline) = 0;
  // Drops the group, aborting what is in flight. Safe to call without one.
  virtual void leave() = 0;
  // Source: sends io's buckets to every member (to_rank 0) or to the sink of rank to_rank in the group.
  virtual void send(const BucketIo &io, uint32_t to_rank, Deadline deadline) = 0;
  // Sink: receives them; broadcast says whether the source sent to all members. Returns once the bytes are in
  // the tensors.
  virtual void receive(const BucketIo &io, bool broadcast, Deadline deadline) = 0;
};

// buckets: the bucket size (each end keeps two buffers of it). device: the CUDA ordinal NCCL works on.
std::unique_ptr<Transport> make_tcp_transport(uint64_t bucket_size);
// RelayError(kExitFailure) naming what is missing when libnccl.so.2 or libcuda cannot be loaded, or this
// build has no NCCL headers.
std::unique_ptr<Transport> make_nccl_transport(uint64_t bucket_size, int32_t device);

}  // namespace wbrelay
