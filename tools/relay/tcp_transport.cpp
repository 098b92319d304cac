// The TCP transport: buckets travel as kData frames on the control connections, staged through a host buffer.
// The source writes each bucket to the receiving sinks one after another; it is meant for host topics on
// machines without GPUs and for the tests, not for speed.
#include <cstring>

#include "failures.hpp"
#include "messages.hpp"
#include "transport.hpp"

namespace wbrelay {

namespace {

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(uint64_t bucket_size) : buffer_(bucket_size) {}
  const char *name() const override { return "tcp"; }
  std::string new_token() override { return {}; }
  void join(const GroupSpec &group, Deadline) override { group_ = group; }
  void leave() override { group_ = GroupSpec(); }

  void send(const BucketIo &io, uint32_t to_rank, Deadline deadline) override {
    for (const Bucket &b : *io.buckets) {
      for (const Piece &p : b.pieces) std::memcpy(buffer_.data() + p.bucket_offset, io.base[p.item] + p.item_offset, p.bytes);
      for (uint32_t r = 1; r < group_.nranks; ++r) {
        if (to_rank == 0 || to_rank == r) send_data(group_.peers.at(r - 1), buffer_.data(), b.bytes, deadline);
      }
    }
  }

  void receive(const BucketIo &io, bool, Deadline deadline) override {
    for (const Bucket &b : *io.buckets) {
      read_data(group_.peers.at(0), buffer_.data(), b.bytes, deadline);
      for (const Piece &p : b.pieces) std::memcpy(io.base[p.item] + p.item_offset, buffer_.data() + p.bucket_offset, p.bytes);
    }
  }

 private:
  std::vector<char> buffer_;
  GroupSpec group_;
};

}  // namespace

std::unique_ptr<Transport> make_tcp_transport(uint64_t bucket_size) {
  return std::make_unique<TcpTransport>(bucket_size);
}

}  // namespace wbrelay
