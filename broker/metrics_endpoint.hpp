// Where weightbusd --metrics listens: unix:PATH, or tcp:[ADDR:]PORT (loopback unless an address is given).
#pragma once

#include <cstdint>
#include <string>

namespace wb::broker {

struct MetricsEndpoint {
  enum class Kind { kOff, kUnix, kTcp };
  Kind kind = Kind::kOff;
  std::string path;  // kUnix
  std::string host;  // kTcp: a numeric IPv4 or IPv6 address (without brackets)
  uint16_t port = 0; // kTcp; 0: one the kernel picks (the log says which)
  bool ipv6 = false;

  // "unix:/run/wb.metrics", "tcp:127.0.0.1:9464", "tcp:[::1]:9464": the form the log and errors print.
  std::string text() const;
};

// Parses --metrics' value. tcp:PORT listens on 127.0.0.1; any other address must be written out
// (tcp:0.0.0.0:9464), and only numeric ones are taken, so that nothing is looked up. False when text is none
// of these forms.
bool parse_metrics_endpoint(const char *text, MetricsEndpoint *out);

}  // namespace wb::broker
