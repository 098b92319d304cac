#include "wire.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clock.hpp"
#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::wire {

int send(int sock, const uint8_t *data, size_t size, const int *fds, int nfds) {
  if (size > kMaxMessage) return fail(WB_E_SIZE, "control message of %zu bytes is over %zu", size, kMaxMessage);
  iovec iov{const_cast<uint8_t *>(data), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (sent == ssize_t(size)) return WB_OK;
    if (sent >= 0) return fail(WB_E_IO, "short send of a control message");
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) {
      return fail(WB_E_BROKER_GONE, "the peer closed the control socket");
    }
    return fail_errno("sendmsg");
  }
}

void close_all(std::vector<int> &fds) {
  for (int fd : fds) close(fd);
  fds.clear();
}

void Received::reserve() {
  data.resize(kMaxMessage);
  fds.reserve(kMaxFds);
}

int receive(int sock, int64_t timeout_ms, Received *out) {
  Deadline deadline(timeout_ms);
  out->reserve();
  out->fds.clear();
  for (;;) {
    pollfd pfd{sock, POLLIN, 0};
    int ready = poll(&pfd, 1, int(deadline.remaining_ms()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return fail_errno("poll");
    if (ready == 0) return fail(WB_E_TIMEOUT, "no answer on the control socket within %lld ms", (long long)timeout_ms);
    iovec iov{out->data.data(), out->data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    // MSG_TRUNC: the datagram's real length, so that an oversized one is named as such.
    ssize_t got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0 && errno == ECONNRESET) return fail(WB_E_BROKER_GONE, "the peer reset the control socket");
    if (got < 0) return fail_errno("recvmsg");
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        out->fds.push_back(fd);
      }
    }
    if (got == 0) {
      close_all(out->fds);
      return fail(WB_E_BROKER_GONE, "the peer closed the control socket");
    }
    if (size_t(got) > kMaxMessage) {
      close_all(out->fds);
      return fail(WB_E_SIZE, "control message of %zd bytes is over the limit of %zu", got, kMaxMessage);
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      close_all(out->fds);
      return fail(WB_E_PROTOCOL, "control message carries more than %d descriptors", kMaxFds);
    }
    out->data.resize(size_t(got));
    return WB_OK;
  }
}

}  // namespace wb::wire
