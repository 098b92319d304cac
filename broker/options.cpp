#include "options.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "weightbus/weightbus.h"

namespace wb::broker {

namespace {

const char kUsage[] =
    "usage: weightbusd [options]\n"
    "\n"
    "The weightbus broker: owns the shared-memory registry of topics, tensors and versions for one node (or\n"
    "one user/job) and answers clients on a Unix socket.\n"
    "\n"
    "options:\n"
    "  --name NAME              broker name (default: default); names the segment /weightbus-<uid>-<NAME>\n"
    "  --socket PATH            control socket (default: $WEIGHTBUS_SOCKET, else\n"
    "                           $XDG_RUNTIME_DIR/weightbus/NAME.sock, else /tmp/weightbus-<uid>/NAME.sock)\n"
    "  --foreground             stay in the foreground and log to stderr (default: daemonize and log to\n"
    "                           NAME.log beside the socket)\n"
    "  --log-level LEVEL        error, warn, info (default) or debug\n"
    "  --max-topics N           topics in the registry (default 256)\n"
    "  --max-tensors N          tensors and views (default 65536)\n"
    "  --max-allocations N      shared allocations (default 4096)\n"
    "  --max-clients N          attached clients at once (default 128)\n"
    "  --leases-per-client N    snapshots one client may hold at once (default 64)\n"
    "  --ring-slots N           version records kept per topic (default 16, at least 2)\n"
    "  --help, --version\n"
    "\n"
    "example:\n"
    "  weightbusd --foreground --name train0 --max-tensors 200000\n";

bool parse_count(const char *text, uint32_t min, uint32_t max, uint32_t *out) {
  errno = 0;
  char *end;
  unsigned long long value = strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < min || value > max) return false;
  *out = uint32_t(value);
  return true;
}

struct CountFlag {
  const char *flag;
  uint32_t shm::Capacities::*field;
  uint32_t min;
  uint32_t max;
};

const CountFlag kCountFlags[] = {
    {"--max-topics", &shm::Capacities::max_topics, 1, 65534},
    {"--max-tensors", &shm::Capacities::max_tensors, 1, 16u << 20},
    {"--max-allocations", &shm::Capacities::max_allocations, 1, 1u << 20},
    {"--max-clients", &shm::Capacities::max_clients, 1, 65536},
    {"--leases-per-client", &shm::Capacities::leases_per_client, 1, 65536},
    {"--ring-slots", &shm::Capacities::ring_slots, 2, 4096},
};

int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "weightbusd: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(see weightbusd --help)\n");
  return 2;
}

}  // namespace

int parse_options(int argc, char **argv, Options *out, bool *exit_now) {
  *exit_now = false;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(kUsage, stdout);
      *exit_now = true;
      return 0;
    }
    if (strcmp(arg, "--version") == 0) {
      printf("weightbusd %s\n", WB_VERSION_STRING);
      *exit_now = true;
      return 0;
    }
    if (strcmp(arg, "--foreground") == 0) {
      out->foreground = true;
      continue;
    }
    if (i + 1 >= argc) return *exit_now = true, usage_error("%s needs a value or is unknown", arg);
    const char *value = argv[++i];
    if (strcmp(arg, "--name") == 0) {
      if (value[0] == '\0' || strlen(value) > 64 || strchr(value, '/') != nullptr) {
        return *exit_now = true, usage_error("--name '%s' must be 1..64 bytes without '/'", value);
      }
      out->name = value;
    } else if (strcmp(arg, "--socket") == 0) {
      out->socket_path = value;
    } else if (strcmp(arg, "--log-level") == 0) {
      if (!parse_log_level(value, &out->log_level)) {
        return *exit_now = true, usage_error("--log-level '%s' is not error, warn, info or debug", value);
      }
    } else {
      const CountFlag *flag = nullptr;
      for (const CountFlag &f : kCountFlags) {
        if (strcmp(arg, f.flag) == 0) flag = &f;
      }
      if (flag == nullptr) return *exit_now = true, usage_error("unknown option %s", arg);
      if (!parse_count(value, flag->min, flag->max, &(out->caps.*flag->field))) {
        fprintf(stderr, "weightbusd: %s %s is not a whole number in %u..%u\n", arg, value, flag->min, flag->max);
        *exit_now = true;
        return 2;
      }
    }
  }
  return 0;
}

}  // namespace wb::broker
