// weightbusd's command line.
#pragma once

#include <string>

#include "layout.hpp"
#include "log.hpp"
#include "quota.hpp"

namespace wb::broker {

struct Options {
  std::string name = "default";
  std::string socket_path;  // empty: resolved like the library does
  bool foreground = false;
  LogLevel log_level = LogLevel::kInfo;
  shm::Capacities caps{256, 65536, 4096, 128, 64, 16, 1024};
  Quota per_client;  // 0 in a field: half of its table (bytes: half of the machine's memory)
};

// Parses argv. Returns 0 to run, or an exit status (after printing help, the version, or a usage error).
int parse_options(int argc, char **argv, Options *out, bool *exit_now);

}  // namespace wb::broker
