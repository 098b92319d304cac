// The figures an operator alerts on, and their exposition in Prometheus' text format (version 0.0.4): the one
// formatter of `weightbus stats --prometheus` (figures from the library's calls) and of weightbusd --metrics
// (figures from the broker's segment, census.hpp). It knows the public API's structs alone and is a library of
// its own (wb_metrics), so that the CLI, which links no wbcore, uses it too. docs/operations.md lists the
// metrics; a metric added here is added there.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "weightbus/weightbus.h"

namespace wb::metrics {

// The Content-Type of the exposition.
inline constexpr const char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// What the leases on one topic add up to.
struct LeaseTally {
  uint32_t leases = 0;
  uint64_t max_lag = 0;  // versions: the topic's latest minus the oldest version leased
  uint64_t longest_hold_ns = 0;
  std::set<uint32_t> readers;  // the clients holding them

  void add(const wb_lease_info &lease);
};

struct TopicFigures {
  wb_topic_info info;
  bool publisher_alive = false;  // its publisher, or every rank's, is attached
  LeaseTally tally;
};

struct Figures {
  wb_broker_info broker;
  uint32_t most_leases_held = 0;  // by one client: what is used of leases_per_client
  std::vector<TopicFigures> topics;
  uint64_t now_ns = 0;  // CLOCK_REALTIME when they were read: ages and the uptime are counted to it
};

// Every metric of figures, each with its HELP and TYPE lines; counters end in _total.
std::string exposition(const Figures &figures);

// "0.1.0" for WB_VERSION 100.
std::string version_string(uint32_t version);

}  // namespace wb::metrics
