#include "messages.hpp"

#include <cstring>

#include "failures.hpp"

namespace wbrelay {

namespace {

struct Frame {
  uint32_t type;
  uint32_t zero;
  uint64_t size;
};

void send_frame(int fd, MessageType type, uint64_t size, Deadline deadline) {
  Frame f{uint32_t(type), 0, size};
  write_all(fd, &f, sizeof(f), deadline);
}

Frame read_frame(int fd, Deadline deadline) {
  Frame f{};
  read_all(fd, &f, sizeof(f), deadline);
  if (f.type < uint32_t(MessageType::kHello) || f.type > uint32_t(MessageType::kAck) || f.zero != 0) {
    throw PeerError("malformed message (type " + std::to_string(f.type) + "): not a weightbus relay peer");
  }
  return f;
}

}  // namespace

const char *message_name(MessageType type) {
  static const char *const names[] = {"hello", "welcome", "refuse", "ready", "group", "joined", "version", "data", "sent", "ack"};
  uint32_t i = uint32_t(type) - 1;
  return i < sizeof(names) / sizeof(names[0]) ? names[i] : "unknown";
}

Writer &Writer::raw(const void *p, size_t n) {
  const auto *b = static_cast<const uint8_t *>(p);
  data_.insert(data_.end(), b, b + n);
  return *this;
}

void Reader::raw(void *p, size_t n) {
  if (n == 0) return;  // p may be null then (an empty vector's data), which memcpy does not allow
  if (data_.size() - at_ < n) throw PeerError("malformed message: truncated");
  std::memcpy(p, data_.data() + at_, n);
  at_ += n;
}

uint32_t Reader::u32() {
  uint32_t v;
  raw(&v, sizeof(v));
  return v;
}

uint64_t Reader::u64() {
  uint64_t v;
  raw(&v, sizeof(v));
  return v;
}

int64_t Reader::i64() {
  int64_t v;
  raw(&v, sizeof(v));
  return v;
}

std::vector<uint8_t> Reader::bytes(uint32_t max) {
  uint32_t size = u32();
  if (size > max) throw PeerError("malformed message: a field of " + std::to_string(size) + " bytes");
  std::vector<uint8_t> out(size);
  raw(out.data(), size);
  return out;
}

std::string Reader::str(uint32_t max) {
  std::vector<uint8_t> b = bytes(max);
  return std::string(b.begin(), b.end());
}

void send_message(int fd, MessageType type, const Writer &payload, Deadline deadline) {
  send_frame(fd, type, payload.data().size(), deadline);
  write_all(fd, payload.data().data(), payload.data().size(), deadline);
}

void send_refusal(int fd, const std::string &why, Deadline deadline) {
  send_message(fd, MessageType::kRefuse, Writer().str(why), deadline);
}

Message read_message(int fd, Deadline deadline) {
  Frame f = read_frame(fd, deadline);
  if (f.size > kMaxControlPayload) {
    throw PeerError(std::string("malformed message: a ") + message_name(MessageType(f.type)) + " of " +
                    std::to_string(f.size) + " bytes");
  }
  Message m{MessageType(f.type), std::vector<uint8_t>(f.size)};
  read_all(fd, m.payload.data(), f.size, deadline);
  return m;
}

Message expect_message(int fd, MessageType want, Deadline deadline) {
  Message m = read_message(fd, deadline);
  if (m.type == want) return m;
  if (m.type == MessageType::kRefuse) throw PeerError("refused: " + Reader(m.payload).str(4096));
  throw PeerError(std::string("expected a ") + message_name(want) + " message, got a " + message_name(m.type));
}

void send_data(int fd, const void *data, uint64_t size, Deadline deadline) {
  send_frame(fd, MessageType::kData, size, deadline);
  write_all(fd, data, size, deadline);
}

void read_data(int fd, void *data, uint64_t size, Deadline deadline) {
  Frame f = read_frame(fd, deadline);
  if (MessageType(f.type) == MessageType::kRefuse) throw PeerError("the source gave up on this version");
  if (MessageType(f.type) != MessageType::kData || f.size != size) {
    throw PeerError("expected " + std::to_string(size) + " bytes of data, got a " +
                    message_name(MessageType(f.type)) + " of " + std::to_string(f.size));
  }
  read_all(fd, data, size, deadline);
}

}  // namespace wbrelay
