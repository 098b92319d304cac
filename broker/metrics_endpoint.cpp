#include "metrics_endpoint.hpp"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>

namespace wb::broker {

namespace {

bool parse_port(const std::string &text, uint16_t *port) {
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  const unsigned long value = strtoul(text.c_str(), nullptr, 10);
  if (value > 65535) return false;
  *port = uint16_t(value);
  return true;
}

// ADDR:PORT with ADDR a numeric IPv4 address or a bracketed IPv6 one; PORT alone means 127.0.0.1.
bool parse_tcp(const std::string &rest, MetricsEndpoint *out) {
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) {
    out->host = "127.0.0.1";
    return parse_port(rest, &out->port);
  }
  std::string host = rest.substr(0, colon);
  unsigned char address[sizeof(in6_addr)];
  out->ipv6 = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (out->ipv6) host = host.substr(1, host.size() - 2);
  if (inet_pton(out->ipv6 ? AF_INET6 : AF_INET, host.c_str(), address) != 1) return false;
  out->host = host;
  return parse_port(rest.substr(colon + 1), &out->port);
}

}  // namespace

std::string MetricsEndpoint::text() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (kind == Kind::kTcp) return "tcp:" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  return "off";
}

bool parse_metrics_endpoint(const char *text, MetricsEndpoint *out) {
  MetricsEndpoint parsed;
  if (strncmp(text, "unix:", 5) == 0) {
    parsed.kind = MetricsEndpoint::Kind::kUnix;
    parsed.path = text + 5;
    if (parsed.path.empty() || parsed.path.size() >= sizeof(sockaddr_un{}.sun_path)) return false;
  } else if (strncmp(text, "tcp:", 4) == 0) {
    parsed.kind = MetricsEndpoint::Kind::kTcp;
    if (!parse_tcp(text + 4, &parsed)) return false;
  } else {
    return false;
  }
  *out = parsed;
  return true;
}

}  // namespace wb::broker
