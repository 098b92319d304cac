// The relay's errors and exit statuses. RelayError ends the process with its status; PeerError is one peer
// failing (closed, silent past the deadline, malformed), which the source survives by dropping that peer.
#pragma once

#include <weightbus/weightbus.hpp>

#include <stdexcept>
#include <string>

namespace wbrelay {

inline constexpr int kExitFailure = 1;     // the local broker, the topic, CUDA or NCCL failed
inline constexpr int kExitUsage = 2;       // a bad option
inline constexpr int kExitRendezvous = 3;  // no peer within the timeout, or refused by it

struct RelayError : std::runtime_error {
  RelayError(int code, const std::string &what) : std::runtime_error(what), exit_code(code) {}
  int exit_code;
};

struct PeerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs call, made of weightbus.hpp's calls: a weightbus::Error it throws becomes RelayError(kExitFailure)
// saying what the relay was doing, "<what>: <code>: <the library's message>".
template <class Call>
auto doing(const std::string &what, Call &&call) -> decltype(call()) {
  try {
    return call();
  } catch (const weightbus::Error &e) {
    throw RelayError(kExitFailure, what + ": " + e.what());
  }
}

}  // namespace wbrelay
