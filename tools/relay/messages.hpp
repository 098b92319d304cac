// The relay's control protocol: framed messages on the rendezvous connection between the source and each sink.
// A frame is {u32 type, u32 zero, u64 size} and size bytes of payload, in the host's byte order (the relay
// runs between nodes of one cluster, all little-endian x86-64 or aarch64).
//
//   sink -> source   kHello    magic, protocol, rank, world, topic, transport, the sink topic's latest version
//   source -> sink   kWelcome  the topic's layout                     | kRefuse  why
//   sink -> source   kReady    the sink topic's latest version        | kRefuse  why (the layout differs)
//   source -> sink   kGroup    generation, nranks, rank, transport token (the NCCL unique id)
//   sink -> source   kJoined   generation                             | kRefuse  why
//   source -> sink   kVersion  version, generation, route, bucket size, metadata, tensor names
//   source -> sink   kData     a bucket's bytes (TCP transport only)
//   source -> sink   kSent     version: the source's side of the transfer finished. A sink publishes only after
//                              it: a receive can complete on stale bytes when the source aborted mid-transfer
//   sink -> source   kAck      the version now published              | kRefuse  why (the sink exits)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net.hpp"

namespace wbrelay {

inline constexpr uint64_t kMagic = 0x31594c4552425757ull;  // "WWBRELY1"
inline constexpr uint32_t kProtocol = 2;
inline constexpr uint64_t kMaxControlPayload = 64ull << 20;  // a layout of ~100,000 tensors

enum class MessageType : uint32_t {
  kHello = 1,
  kWelcome,
  kRefuse,
  kReady,
  kGroup,
  kJoined,
  kVersion,
  kData,
  kSent,
  kAck,
};

const char *message_name(MessageType type);

// Builds a payload.
class Writer {
 public:
  Writer &u32(uint32_t v) { return raw(&v, sizeof(v)); }
  Writer &u64(uint64_t v) { return raw(&v, sizeof(v)); }
  Writer &i64(int64_t v) { return raw(&v, sizeof(v)); }
  Writer &bytes(const void *data, uint32_t size) { return u32(size).raw(data, size); }
  Writer &str(const std::string &s) { return bytes(s.data(), uint32_t(s.size())); }
  const std::vector<uint8_t> &data() const { return data_; }

 private:
  Writer &raw(const void *p, size_t n);
  std::vector<uint8_t> data_;
};

// Reads a payload; PeerError when it is shorter than what is read from it, or a length is out of bounds.
class Reader {
 public:
  explicit Reader(const std::vector<uint8_t> &data) : data_(data) {}
  Reader(std::vector<uint8_t> &&) = delete;  // it keeps a reference: the payload must outlive it
  uint32_t u32();
  uint64_t u64();
  int64_t i64();
  std::vector<uint8_t> bytes(uint32_t max);
  std::string str(uint32_t max);
  bool done() const { return at_ == data_.size(); }

 private:
  void raw(void *p, size_t n);
  const std::vector<uint8_t> &data_;
  size_t at_ = 0;
};

struct Message {
  MessageType type;
  std::vector<uint8_t> payload;
};

void send_message(int fd, MessageType type, const Writer &payload, Deadline deadline);
void send_refusal(int fd, const std::string &why, Deadline deadline);
// The next message, whose payload must be at most kMaxControlPayload; PeerError otherwise.
Message read_message(int fd, Deadline deadline);
// The next message, which must be of type want: a kRefuse becomes PeerError("refused: why"), another type a
// PeerError naming both.
Message expect_message(int fd, MessageType want, Deadline deadline);

// kData frames: header and bytes sent separately, the bytes read straight into the caller's buffer.
void send_data(int fd, const void *data, uint64_t size, Deadline deadline);
void read_data(int fd, void *data, uint64_t size, Deadline deadline);

}  // namespace wbrelay
