// weightbusd's command line.
#pragma once

#include <string>

#include "layout.hpp"
#include "log.hpp"
#include "metrics_endpoint.hpp"
#include "quota.hpp"

namespace wb::broker {

// What stopping does with the segment (--on-stop): remove it with every topic, or keep it for the next broker.
enum class OnStop { kRemove, kKeep };

struct Options {
  std::string name = "default";
  std::string socket_path;  // empty: resolved like the library does
  bool foreground = false;
  OnStop on_stop = OnStop::kRemove;  // on SIGTERM and SIGINT; SIGUSR1 always keeps, SIGUSR2 always removes
  LogLevel log_level = LogLevel::kInfo;
  shm::Capacities caps{256, 65536, 4096, 128, 64, 16, 1024};
  Quota per_client;  // 0 in a field: half of its table (bytes: half of the machine's memory)
  MetricsEndpoint metrics;  // --metrics; off unless given
};

// Parses argv. Returns 0 to run, or an exit status (after printing help, the version, or a usage error).
int parse_options(int argc, char **argv, Options *out, bool *exit_now);

}  // namespace wb::broker
