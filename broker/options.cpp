#include "options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

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
    "                           $XDG_RUNTIME_DIR/weightbus/NAME.sock, else /tmp/weightbus-<uid>/NAME.sock).\n"
    "                           Its directory is made 0700 if missing; weightbusd refuses to start when it is\n"
    "                           not a real directory of its uid that group and others cannot write (so not\n"
    "                           /tmp itself), or when /dev/shm holds objects of its name it does not own.\n"
    "  --foreground             stay in the foreground and log to stderr (default: daemonize and log to\n"
    "                           the socket's path + .log, e.g. /tmp/weightbus-<uid>/NAME.sock.log)\n"
    "  --log-level LEVEL        error, warn, info (default) or debug\n"
    "  --on-stop keep|remove    what SIGTERM and SIGINT do with the topics (default: remove; see stopping)\n"
    "  --metrics unix:PATH|tcp:[ADDR:]PORT  serve Prometheus metrics there (default: off; see metrics)\n"
    "  --max-topics N           topics in the registry (default 256)\n"
    "  --max-tensors N          tensors and views (default 65536)\n"
    "  --max-allocations N      shared allocations (default 4096)\n"
    "  --max-clients N          attached clients at once (default 128)\n"
    "  --leases-per-client N    snapshots one client may hold at once (default 64)\n"
    "  --ring-slots N           version records kept per topic (default 16, at least 2)\n"
    "  --max-ranks N            publishing ranks of sharded topics, all together (default 1024)\n"
    "  --help, --version\n"
    "\n"
    "per-client limits (one connection; a request over one is refused with WB_E_NOSPC naming the flag):\n"
    "  --max-topics-per-client N       topics one client may create (default: half of --max-topics)\n"
    "  --max-tensors-per-client N      tensors and views one client may add (default: half of --max-tensors)\n"
    "  --max-allocations-per-client N  allocations one client may make (default: half of --max-allocations)\n"
    "  --max-bytes-per-client N[K|M|G|T]  host shared memory one client may allocate (default: half of the\n"
    "                                  machine's memory)\n"
    "  --max-subscriptions-per-client N  notify fds (wb_topic_notify_fd) one client may hold at once\n"
    "                                  (default: 4 x --max-topics)\n"
    "  --max-chunks-per-client N       CUDA VMM chunks one client may export (default 65536)\n"
    "\n"
    "descriptors: the broker raises its soft RLIMIT_NOFILE (`ulimit -n`) to the hard limit and keeps 16 of\n"
    "them free, so that it can always accept, answer and close, and room for --max-clients connections; a\n"
    "connection or request that would need one of those is refused with WB_E_NOSPC naming RLIMIT_NOFILE.\n"
    "\n"
    "metrics (each one is listed in docs/operations.md):\n"
    "  --metrics unix:PATH        a Unix socket of mode 0600 (a path left by a dead broker is taken over)\n"
    "  --metrics tcp:PORT         127.0.0.1:PORT: loopback only, though any local user may connect\n"
    "  --metrics tcp:ADDR:PORT    that address (numeric: 0.0.0.0, [::1], ...): only where whoever reaches it\n"
    "                             may read every topic's name and figures\n"
    "  The broker answers GET /metrics in Prometheus' text format over HTTP/1.0, one answer per connection,\n"
    "  with the figures of `weightbus stats --prometheus`; a connection is closed within 5 s whatever it does.\n"
    "  A path or port it cannot listen on stops it at start.\n"
    "\n"
    "stopping:\n"
    "  SIGTERM or SIGINT (`weightbus stop [--name NAME | --socket PATH]` sends SIGTERM and waits) stops the\n"
    "  broker as --on-stop says. remove: it drops its clients and removes its socket and its segment, with every\n"
    "  topic in it. keep (what the systemd units set): it leaves the segment in /dev/shm, as SIGKILL or a crash\n"
    "  does: a broker started again with the same name adopts it, with every topic and published version, and\n"
    "  the clients resume with it. SIGUSR1 (`weightbus stop --keep`) always keeps; SIGUSR2 (`weightbus stop\n"
    "  --remove`) always removes.\n"
    "\n"
    "systemd:\n"
    "  With $LISTEN_FDS (socket activation, weightbusd.socket) the broker serves the socket systemd passes\n"
    "  instead of binding one (the socket's path is systemd's), and leaves it in place when it stops. With\n"
    "  $NOTIFY_SOCKET (Type=notify) it says READY=1 once clients can connect. Run it there with --foreground.\n"
    "\n"
    "examples:\n"
    "  weightbusd --foreground --name train0 --max-tensors 200000\n"
    "  weightbusd --name job7 && weightbus --name job7 ls && weightbus --name job7 stop\n";

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

constexpr const shm::Capacities &kMax = shm::kCapacityLimits;
// Each subscription and CUDA chunk is a descriptor in the broker: the limits are below what a process may open
// (fs.nr_open, 1048576 by default), and the broker's descriptor budget refuses them earlier still.
constexpr uint32_t kMaxSubscriptionsPerClient = 1u << 20;
constexpr uint32_t kMaxChunksPerClient = 1u << 20;
// A client's notify subscriptions by default: one notify fd per topic per client handle, for four handles of
// every topic, far more than a reader uses, far fewer than one descriptor-hungry loop would open.
constexpr uint32_t kSubscriptionsPerTopic = 4;
// CUDA VMM chunks one client may register by default: 64 Ki chunks of at least 2 MiB (the VMM granularity)
// are 128 GiB or more, more than one GPU holds.
constexpr uint32_t kDefaultChunksPerClient = 65536;

const CountFlag kCountFlags[] = {
    {"--max-topics", &shm::Capacities::max_topics, 1, kMax.max_topics},
    {"--max-tensors", &shm::Capacities::max_tensors, 1, kMax.max_tensors},
    {"--max-allocations", &shm::Capacities::max_allocations, 1, kMax.max_allocations},
    {"--max-clients", &shm::Capacities::max_clients, 1, kMax.max_clients},
    {"--leases-per-client", &shm::Capacities::leases_per_client, 1, kMax.leases_per_client},
    {"--ring-slots", &shm::Capacities::ring_slots, 2, kMax.ring_slots},
    {"--max-ranks", &shm::Capacities::max_ranks, 1, kMax.max_ranks},
};

struct QuotaFlag {
  const char *flag;
  uint32_t Quota::*field;
  uint32_t max;
};

const QuotaFlag kQuotaFlags[] = {
    {"--max-topics-per-client", &Quota::topics, kMax.max_topics},
    {"--max-tensors-per-client", &Quota::tensors, kMax.max_tensors},
    {"--max-allocations-per-client", &Quota::allocations, kMax.max_allocations},
    {"--max-subscriptions-per-client", &Quota::subscriptions, kMaxSubscriptionsPerClient},
    {"--max-chunks-per-client", &Quota::chunks, kMaxChunksPerClient},
};

// A byte count with an optional binary suffix (K, M, G, T), at least 1.
bool parse_bytes(const char *text, uint64_t *out) {
  errno = 0;
  char *end;
  unsigned long long value = strtoull(text, &end, 10);
  if (errno != 0 || end == text || text[0] == '-' || value == 0) return false;
  const char *suffixes = "KMGT";
  const char *unit = *end != '\0' ? strchr(suffixes, *end) : nullptr;
  if (*end != '\0' && (unit == nullptr || end[1] != '\0')) return false;
  int shift = unit == nullptr ? 0 : 10 * int(unit - suffixes + 1);
  if (value > (UINT64_MAX >> shift)) return false;
  *out = uint64_t(value) << shift;
  return true;
}

// Per-client limits of table entries left at 0 get half of what they limit, at least 1.
void default_quota(const shm::Capacities &caps, Quota *q) {
  if (q->topics == 0) q->topics = std::max(1u, caps.max_topics / 2);
  if (q->tensors == 0) q->tensors = std::max(1u, caps.max_tensors / 2);
  if (q->allocations == 0) q->allocations = std::max(1u, caps.max_allocations / 2);
  if (q->bytes == 0) q->bytes = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE)) / 2;
  if (q->subscriptions == 0) q->subscriptions = kSubscriptionsPerTopic * caps.max_topics;
  if (q->chunks == 0) q->chunks = kDefaultChunksPerClient;
}

template <typename Flag, size_t N>
const Flag *find_flag(const Flag (&flags)[N], const char *arg) {
  for (const Flag &f : flags) {
    if (strcmp(arg, f.flag) == 0) return &f;
  }
  return nullptr;
}

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
    } else if (strcmp(arg, "--on-stop") == 0) {
      if (strcmp(value, "keep") != 0 && strcmp(value, "remove") != 0) {
        return *exit_now = true, usage_error("--on-stop '%s' is not keep or remove", value);
      }
      out->on_stop = strcmp(value, "keep") == 0 ? OnStop::kKeep : OnStop::kRemove;
    } else if (strcmp(arg, "--socket") == 0) {
      out->socket_path = value;
    } else if (strcmp(arg, "--log-level") == 0) {
      if (!parse_log_level(value, &out->log_level)) {
        return *exit_now = true, usage_error("--log-level '%s' is not error, warn, info or debug", value);
      }
    } else if (strcmp(arg, "--metrics") == 0) {
      if (!parse_metrics_endpoint(value, &out->metrics)) {
        return *exit_now = true, usage_error("--metrics '%s' is not unix:PATH, tcp:PORT or tcp:ADDR:PORT (ADDR a "
                                             "numeric IPv4 address or a bracketed IPv6 one)", value);
      }
    } else if (strcmp(arg, "--max-bytes-per-client") == 0) {
      if (!parse_bytes(value, &out->per_client.bytes)) {
        return *exit_now = true, usage_error("--max-bytes-per-client %s is not a byte count such as 8G", value);
      }
    } else if (const QuotaFlag *quota = find_flag(kQuotaFlags, arg); quota != nullptr) {
      if (!parse_count(value, 1, quota->max, &(out->per_client.*quota->field))) {
        fprintf(stderr, "weightbusd: %s %s is not a whole number in 1..%u\n", arg, value, quota->max);
        *exit_now = true;
        return 2;
      }
    } else {
      const CountFlag *flag = find_flag(kCountFlags, arg);
      if (flag == nullptr) return *exit_now = true, usage_error("unknown option %s", arg);
      if (!parse_count(value, flag->min, flag->max, &(out->caps.*flag->field))) {
        fprintf(stderr, "weightbusd: %s %s is not a whole number in %u..%u\n", arg, value, flag->min, flag->max);
        *exit_now = true;
        return 2;
      }
    }
  }
  default_quota(out->caps, &out->per_client);
  return 0;
}

}  // namespace wb::broker
