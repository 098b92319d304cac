// weightbus relay: the two roles and what they share. The source (rank 0) reads each new version of a topic
// from its node's broker and sends the changed tensors to the sinks; each sink publishes the same version,
// with the same metadata, into its own node's broker. docs/relay.md describes the protocol and its failures.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net.hpp"
#include "transport.hpp"

namespace wbrelay {

struct Options {
  std::string socket;  // the local broker's socket; empty: the library's default
  std::string broker_name;
  std::string topic;
  bool source = false;
  Endpoint rendezvous;
  uint32_t rank = 0;
  uint32_t world = 0;
  uint64_t bucket = 512ull << 20;
  int64_t timeout_ms = 30000;  // rendezvous, and how long a silent peer is waited for
  std::string transport = "nccl";
};

// Both return the exit status (0 after a stop signal) or throw RelayError.
int run_source(const Options &o);
int run_sink(const Options &o);

std::unique_ptr<Transport> make_transport(const Options &o, int32_t device);

// A line on stderr, "weightbus relay: ..." (progress and failures of peers; stdout carries the per-version
// lines).
void log_line(const std::string &line);

}  // namespace wbrelay
