#include "metrics.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace wb::metrics {

namespace {

std::string integer(uint64_t value) { return std::to_string(value); }

// Nanoseconds as seconds with millisecond precision, which is what alerts compare.
std::string seconds(uint64_t ns) {
  char text[32];
  snprintf(text, sizeof text, "%" PRIu64 ".%03" PRIu64, ns / 1000000000, ns / 1000000 % 1000);
  return text;
}

std::string seconds_between(uint64_t from_ns, uint64_t to_ns) { return seconds(to_ns > from_ns ? to_ns - from_ns : 0); }

// The length of the UTF-8 sequence at text[i] if it is a whole, valid one (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), else 0.
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  size_t n;
  unsigned char min2 = 0x80, max2 = 0xBF;  // the range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) min2 = 0xA0;
    if (lead == 0xED) max2 = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) min2 = 0x90;
    if (lead == 0xF4) max2 = 0x8F;
  } else {
    return 0;
  }
  if (i + n > text.size() || byte(i + 1) < min2 || byte(i + 1) > max2) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

// A label value as the format quotes it: backslash, double quote and newline escaped. Names are bytes to the
// broker but the exposition is UTF-8: a byte that is not part of valid UTF-8 becomes U+FFFD, so that one odd
// topic name cannot make the whole scrape unreadable.
std::string label_value(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    const char c = text[i];
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.append(text, i, n);
    i += n;
  }
  return out;
}

std::string fixed_string(const char *field, size_t capacity) { return std::string(field, strnlen(field, capacity)); }

class Exposition {
 public:
  void family(const char *name, const char *type, const char *help) {
    text_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  // labels: `name="value",...` (values escaped by label_value) or empty.
  void sample(const char *name, const std::string &labels, const std::string &value) {
    text_ += name;
    if (!labels.empty()) text_ += "{" + labels + "}";
    text_ += " " + value + "\n";
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

// One per-topic metric: its value for a topic, or "" where it has none (the age of a topic never published).
struct TopicMetric {
  const char *name;
  const char *help;
  std::string (*value)(const TopicFigures &t, uint64_t now_ns);
};

const TopicMetric kTopicMetrics[] = {
    {"weightbus_topic_latest_version", "The topic's latest published version (0: none yet).",
     [](const TopicFigures &t, uint64_t) { return integer(t.info.latest); }},
    {"weightbus_topic_latest_age_seconds",
     "Seconds since the latest version was published; absent before the first publish.",
     [](const TopicFigures &t, uint64_t now) {
       return t.info.latest != 0 && t.info.published_ns != 0 ? seconds_between(t.info.published_ns, now) : "";
     }},
    {"weightbus_topic_publisher_alive",
     "1 while a live process holds the publisher role (every rank's, for a sharded topic), else 0.",
     [](const TopicFigures &t, uint64_t) { return integer(t.publisher_alive); }},
    {"weightbus_topic_dirty",
     "1 while readers are refused because a publisher left tensors half-written (R = 1), else 0.",
     [](const TopicFigures &t, uint64_t) { return integer(t.info.dirty != 0); }},
    {"weightbus_topic_readers", "Clients holding at least one lease on the topic.",
     [](const TopicFigures &t, uint64_t) { return integer(t.tally.readers.size()); }},
    {"weightbus_topic_leases", "Leases (pinned versions) held on the topic.",
     [](const TopicFigures &t, uint64_t) { return integer(t.tally.leases); }},
    {"weightbus_topic_max_reader_lag_versions", "The latest version minus the oldest leased version (0: no lease).",
     [](const TopicFigures &t, uint64_t) { return integer(t.tally.max_lag); }},
    {"weightbus_topic_longest_lease_hold_seconds", "How long the oldest lease on the topic has been held (0: none).",
     [](const TopicFigures &t, uint64_t) { return seconds(t.tally.longest_hold_ns); }},
    {"weightbus_topic_bytes", "Shared storage of the topic, all replicas.",
     [](const TopicFigures &t, uint64_t) { return integer(t.info.bytes); }},
};

// One limit of the broker: the weightbusd flag that sets it, what is used of it and the limit.
struct Capacity {
  const char *flag;
  uint64_t used;
  uint64_t limit;
};

std::vector<Capacity> capacities(const Figures &f) {
  const wb_broker_info &b = f.broker;
  return {{"max-topics", b.topics, b.max_topics},       {"max-tensors", b.tensors, b.max_tensors},
          {"max-allocations", b.allocations, b.max_allocations}, {"max-clients", b.clients, b.max_clients},
          {"max-ranks", b.ranks, b.max_ranks},          {"leases-per-client", f.most_leases_held, b.leases_per_client}};
}

std::string limit_label(const Capacity &c) { return std::string("limit=\"") + c.flag + "\""; }

void broker_metrics(const Figures &f, Exposition &out) {
  const wb_broker_info &b = f.broker;
  out.family("weightbus_broker_info", "gauge", "The broker: its version, name and segment (always 1).");
  out.sample("weightbus_broker_info",
             "version=\"" + version_string(b.version) + "\",name=\"" +
                 label_value(fixed_string(b.name, sizeof b.name)) + "\",segment=\"" +
                 label_value(fixed_string(b.segment, sizeof b.segment)) + "\"",
             "1");
  out.family("weightbus_broker_start_time_seconds", "gauge",
             "When the broker started serving its segment, in seconds since the Unix epoch.");
  out.sample("weightbus_broker_start_time_seconds", "", seconds(b.started_ns));
  out.family("weightbus_broker_uptime_seconds", "gauge", "Seconds since the broker started serving its segment.");
  out.sample("weightbus_broker_uptime_seconds", "", seconds_between(b.started_ns, f.now_ns));
  out.family("weightbus_broker_clients", "gauge", "Clients attached now.");
  out.sample("weightbus_broker_clients", "", integer(b.clients));
  const std::vector<Capacity> rows = capacities(f);
  out.family("weightbus_broker_capacity_used", "gauge",
             "Entries used of each limit, by the weightbusd flag that sets it (leases-per-client: the most leases "
             "one client holds; a removed topic's entries stay used).");
  for (const Capacity &c : rows) out.sample("weightbus_broker_capacity_used", limit_label(c), integer(c.used));
  out.family("weightbus_broker_capacity_limit", "gauge", "Each limit, the value of its weightbusd flag.");
  for (const Capacity &c : rows) out.sample("weightbus_broker_capacity_limit", limit_label(c), integer(c.limit));
  const struct {
    const char *name;
    const char *help;
    uint64_t value;
  } counters[] = {
      {"weightbus_broker_publishes_total", "Versions published, over every topic.", b.publishes},
      {"weightbus_broker_reclaims_total", "Clients whose slot the broker freed: each detach, exit and death.",
       b.reclaims},
      {"weightbus_broker_reclaimed_leases_total",
       "Leases clients still held as they went (readers that died or exited without releasing).", b.reclaimed_leases},
      {"weightbus_broker_adoptions_total",
       "Brokers that adopted the segment their predecessor left (a crash, a kill, a stop that kept it).", b.adoptions},
  };
  for (const auto &c : counters) {
    out.family(c.name, "counter", c.help);
    out.sample(c.name, "", integer(c.value));
  }
}

void topic_metrics(const Figures &f, Exposition &out) {
  std::vector<std::string> labels;
  for (const TopicFigures &t : f.topics)
    labels.push_back("topic=\"" + label_value(fixed_string(t.info.name, sizeof t.info.name)) + "\"");
  for (const TopicMetric &m : kTopicMetrics) {
    out.family(m.name, "gauge", m.help);
    for (size_t k = 0; k < f.topics.size(); ++k) {
      const std::string value = m.value(f.topics[k], f.now_ns);
      if (!value.empty()) out.sample(m.name, labels[k], value);
    }
  }
}

}  // namespace

void LeaseTally::add(const wb_lease_info &lease) {
  ++leases;
  max_lag = std::max(max_lag, lease.latest > lease.version ? lease.latest - lease.version : 0);
  longest_hold_ns = std::max(longest_hold_ns, lease.held_ns);
  readers.insert(lease.client_id);
}

std::string version_string(uint32_t version) {
  return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100);
}

std::string exposition(const Figures &figures) {
  Exposition out;
  broker_metrics(figures, out);
  topic_metrics(figures, out);
  return out.take();
}

}  // namespace wb::metrics
