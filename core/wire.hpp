// Framing of control messages: one flatbuffer per SOCK_SEQPACKET datagram, with up to kMaxFds descriptors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wb::wire {

inline constexpr size_t kMaxMessage = 64 * 1024;
inline constexpr int kMaxFds = 4;

// Sends one datagram. Returns WB_OK, WB_E_BROKER_GONE (peer closed) or WB_E_IO.
int send(int sock, const uint8_t *data, size_t size, const int *fds = nullptr, int nfds = 0);

struct Received {
  std::vector<uint8_t> data;
  std::vector<int> fds;  // owned by the receiver: close what is not kept
  // Makes room for the largest datagram, so that receive() allocates nothing: a client that must not fail
  // once the broker acted on its request prepares before sending it.
  void reserve();
};

// Receives one datagram, waiting at most timeout_ms (< 0: no limit). Returns WB_OK, WB_E_TIMEOUT,
// WB_E_BROKER_GONE (end of stream), WB_E_SIZE (over kMaxMessage; consumed), WB_E_PROTOCOL (over kMaxFds
// descriptors; consumed) or WB_E_IO.
int receive(int sock, int64_t timeout_ms, Received *out);

// Closes every descriptor in fds.
void close_all(std::vector<int> &fds);

}  // namespace wb::wire
