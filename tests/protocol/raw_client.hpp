// A client that speaks the control protocol by hand, to send the broker what the library never would.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "layout.hpp"
#include "protocol_generated.h"
#include "wire.hpp"

namespace raw {

inline int connect_to(const char *path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(addr.sun_path)) return -1;
  memcpy(addr.sun_path, path, strlen(path));
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) return -1;
  return sock;
}

// Sends bytes as one datagram and returns the reply's code, or a WB_E_* from the wire (e.g. BROKER_GONE when
// the broker hung up on us). *fds_received counts descriptors in the reply (closed here).
inline int exchange(int sock, const uint8_t *data, size_t size, int *fds_received = nullptr, const int *fds = nullptr,
                    int nfds = 0) {
  int rc = wb::wire::send(sock, data, size, fds, nfds);
  if (rc != WB_OK) return rc;
  wb::wire::Received got;
  rc = wb::wire::receive(sock, 5000, &got);
  if (rc != WB_OK) return rc;
  if (fds_received != nullptr) *fds_received = int(got.fds.size());
  wb::wire::close_all(got.fds);
  flatbuffers::Verifier verifier(got.data.data(), got.data.size());
  if (!verifier.VerifyBuffer<wb::proto::Message>()) return WB_E_PROTOCOL;
  const wb::proto::Reply *reply = wb::proto::GetMessage(got.data.data())->body_as_Reply();
  return reply == nullptr ? WB_E_PROTOCOL : reply->code();
}

template <typename Body>
int send_body(int sock, flatbuffers::FlatBufferBuilder &b, flatbuffers::Offset<Body> body, int *fds_received = nullptr,
              const int *fds = nullptr, int nfds = 0) {
  b.Finish(wb::proto::CreateMessage(b, 1, wb::proto::BodyTraits<Body>::enum_value, body.Union()));
  return exchange(sock, b.GetBufferPointer(), b.GetSize(), fds_received, fds, nfds);
}

// Maps the segment of the broker started with --name `name` (alive or dead), read-write, for a test to look
// at or damage; munmap(*base, *size) when done.
inline wb::shm::Segment map_segment(const char *name, void **base, size_t *size) {
  std::string path = "/weightbus-" + std::to_string(getuid()) + "-" + name;
  int fd = shm_open(path.c_str(), O_RDWR, 0);
  struct stat st {};
  fstat(fd, &st);
  *size = size_t(st.st_size);
  *base = mmap(nullptr, *size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return wb::shm::Segment(*base);
}

// The registry slot of topic `name` in a mapped segment, or wb::shm::kNone.
inline uint32_t topic_slot_of(const wb::shm::Segment &seg, const char *name) {
  for (uint32_t i = 0; i < seg.caps().max_topics; ++i) {
    if (strcmp(seg.topic(i).name, name) == 0) return i;
  }
  return wb::shm::kNone;
}

}  // namespace raw
