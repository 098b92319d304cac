// The client's line to its broker: the control socket, request ids, whether the broker is gone, the session
// (how many connections this client had), and resuming with a successor broker that adopted the segment
// (broker/adopt.cpp). Whoever talks to the broker is handed the connection, not the client: the allocation
// cache, the CUDA state, the handles' calls.
//
// The round trip has one name per level:
//   send_recv  one request and its reply on one socket, neither resuming nor marking the broker gone (attach,
//              which has no slot to resume yet, and resuming itself);
//   call       a request and its reply: resumes first if the broker died, marks it gone if it dies now;
//   post       a one-way notice (no reply), resuming like call.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "clock.hpp"
#include "protocol_generated.h"
#include "weightbus/weightbus.h"
#include "wire.hpp"

namespace wb {

// A reply from the broker. Its buffer is made with it, before the request goes out: once the broker has acted
// on a request, receiving the answer allocates nothing. The descriptors it carried are closed with it.
struct Reply {
  Reply() { message.reserve(); }
  Reply(const Reply &) = delete;
  Reply &operator=(const Reply &) = delete;
  ~Reply() {
    wire::close_all(fds);
    wire::close_all(message.fds);
  }
  int code = 0;
  uint64_t value = 0;
  uint64_t size = 0;
  std::vector<int> fds;
  wire::Received message;  // the datagram as received
};

// What resuming redoes of the state that lived only in the dead broker, given by the client's owner
// (attach.cpp), so that the connection calls nothing above it: the CUDA allocations this client imported,
// which the successor counts again, and, once resumed, the re-export of what this client exported.
struct ResumeHooks {
  std::vector<uint32_t> (*imported)(void *context) = nullptr;
  void (*resumed)(void *context) = nullptr;
  void *context = nullptr;
};

class Connection {
 public:
  Connection() = default;
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;
  ~Connection();

  // Connects to the broker at path; timeout_ms bounds each reply and the wait for a successor broker.
  // WB_E_CONNECT when nobody listens, WB_E_PERM, WB_E_IO.
  int connect(const char *path, int64_t timeout_ms);
  // Once attached: the client slot a successor hands back (its name in the segment, which outlives the
  // connection, and its generation), the segment's descriptor (whether it outlives its broker) and the hooks.
  void set_session(uint32_t client_slot, uint32_t generation, const char *name, int segment_fd,
                   const ResumeHooks &hooks);

  // One request and its reply on the current socket, under the request mutex, as the top comment says.
  int send_recv(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body,
                Reply *reply);
  // Sends a request whose body the caller built in builder, waits for its reply (timeout_ms), and turns a non-OK
  // reply into fail(code, broker's message). fds travel with the request.
  int call(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body, Reply *reply,
           const int *fds = nullptr, int nfds = 0);
  // Sends a one-way notice (no reply).
  int post(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body);

  // True once the broker closed our socket (checked without blocking).
  bool broker_gone();
  // Whether broker_gone() found it gone, without looking again.
  bool marked_gone() const { return broker_gone_.load(); }
  // Records that the broker is gone (the first time: when).
  void mark_broker_gone();

  // After the broker's death, takes this client's slot back from a successor that adopted the segment.
  // WB_OK when the broker lives or the client resumed, else WB_E_BROKER_GONE saying why.
  int resume();
  // The broker lives, or the client resumed with its successor: WB_OK; else WB_E_BROKER_GONE.
  int check_broker() { return broker_gone() ? resume() : WB_OK; }
  // Whether a waiter should keep waiting for a successor broker: within timeout_ms of the death, unless a
  // successor already refused this client or the segment is gone (a broker that exits cleanly removes it:
  // nothing is left to adopt).
  bool successor_may_come();
  // When the wait for a successor ends (CLOCK_MONOTONIC ns): timeout_ms after the death; -1 for no limit.
  int64_t successor_deadline_ns() const;
  // WB_E_BROKER_GONE saying why no successor may come; called right after resume() failed (a refusal keeps the
  // message resume() gave).
  int no_successor();
  // For calls that wait on shared memory, each time round: WB_E_BROKER_GONE once the broker is gone and no
  // successor took this client back or may still come; else WB_OK (the broker lives, the client resumed, or the
  // wait goes on without one).
  int check_broker_while_waiting();
  // For blocking calls that need the broker (begin, revoke): WB_OK once it lives or the client resumed with a
  // successor; WB_E_BROKER_GONE once none may come; WB_E_TIMEOUT when the deadline passes first. Sleeps between
  // attempts until the successor's socket appears (outage_watch.hpp), at most a short slice.
  int await_broker(const Deadline &deadline);

  // At detach: half-closes the socket and waits (bounded) for the broker to close its end, which it does once it
  // has reclaimed our slot and leases: when wb_detach returns, listings and capacities no longer count us.
  void await_reclaim();

  // Counts the connections this client had, so that notify fds know their broker.
  uint32_t session() const { return session_.load(); }
  const std::string &socket_path() const { return socket_path_; }
  int segment_fd() const { return segment_fd_; }

 private:
  int send_recv_on(int sock, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
                   flatbuffers::Offset<void> body, const int *fds, int nfds, Reply *reply);
  int resume_and_send_recv(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body,
                           const int *fds, int nfds, Reply *reply);
  int send_resume(int sock, const std::vector<uint32_t> &imported);
  int reconnect(const std::vector<uint32_t> &imported, bool *done);
  bool segment_removed() const;

  int sock_ = -1;
  int64_t timeout_ms_ = 5000;
  std::string socket_path_;
  int segment_fd_ = -1;  // the client's, not closed here
  uint32_t client_slot_ = 0;
  uint32_t generation_ = 0;  // our slot's, as a successor broker checks when we resume it
  const char *name_ = "";    // our slot's name in the segment
  ResumeHooks hooks_;

  // The broker closed our socket: since when (CLOCK_MONOTONIC), and whether its successor refused to take
  // this client back.
  std::atomic<bool> broker_gone_{false};
  std::atomic<int64_t> broker_gone_since_ns_{0};
  std::atomic<bool> resume_refused_{false};
  std::atomic<uint32_t> session_{0};

  std::mutex request_mutex_;  // one request/reply exchange at a time on the socket
  uint32_t next_request_id_ = 0;
};

}  // namespace wb
