// The exposition (core/metrics.cpp) alone, table-driven: topic names become label values with backslash, double
// quote and newline escaped and bytes that are not UTF-8 replaced by U+FFFD (valid sequences of 1 to 4 bytes
// kept, overlong forms, surrogates, code points past U+10FFFF and cut sequences replaced byte by byte); each
// family has its HELP and TYPE lines before its samples, which are contiguous; counters end in _total; values
// are seconds with milliseconds; a topic never published has no age; leases add up per topic.
#include <cstdint>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metrics.hpp"

extern "C" {
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>  // last: cmocka's macros clash with C++ library headers
}

namespace {

using wb::metrics::Figures;
using wb::metrics::TopicFigures;

TopicFigures topic(const std::string &name, uint64_t latest, uint64_t published_ns) {
  TopicFigures t{WB_TOPIC_INFO_INIT, true, {}};
  memcpy(t.info.name, name.data(), name.size());
  t.info.latest = latest;
  t.info.published_ns = published_ns;
  return t;
}

Figures figures(std::vector<TopicFigures> topics) {
  Figures f{WB_BROKER_INFO_INIT, 0, std::move(topics), 10'000'000'000};
  f.broker.version = WB_VERSION;
  f.broker.started_ns = 7'250'000'000;
  return f;
}

// The sample lines of one metric: labels and value as printed.
std::vector<std::string> samples(const std::string &text, const std::string &metric) {
  std::vector<std::string> found;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(metric + "{", 0) == 0 || line.rfind(metric + " ", 0) == 0) found.push_back(line);
  return found;
}

struct LabelRow {
  const char *what;
  std::string name;
  std::string label;  // as the exposition quotes it
};

const std::vector<LabelRow> kLabelRows = {
    {"plain", "policy", "policy"},
    {"a double quote", "a\"b", "a\\\"b"},
    {"a backslash", "a\\b", "a\\\\b"},
    {"a newline", "a\nb", "a\\nb"},
    {"2-, 3- and 4-byte UTF-8", "\xC2\xB5 \xE2\x82\xAC \xF0\x9F\x98\x80", "\xC2\xB5 \xE2\x82\xAC \xF0\x9F\x98\x80"},
    {"a lone continuation byte", "a\x80z", "a\xEF\xBF\xBDz"},
    {"an overlong NUL", "a\xC0\x80z", "a\xEF\xBF\xBD\xEF\xBF\xBDz"},
    {"an overlong 3-byte form", "\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"a surrogate", "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"past U+10FFFF", "\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"a cut sequence at the end", "ab\xE2\x82", "ab\xEF\xBF\xBD\xEF\xBF\xBD"},
    {"a byte never in UTF-8", "\xFF", "\xEF\xBF\xBD"},
};

void topic_names_are_escaped_label_values(void **) {
  for (const LabelRow &row : kLabelRows) {
    const std::string text = wb::metrics::exposition(figures({topic(row.name, 1, 0)}));
    const std::vector<std::string> got = samples(text, "weightbus_topic_latest_version");
    const std::string want = "weightbus_topic_latest_version{topic=\"" + row.label + "\"} 1";
    if (got.size() != 1 || got[0] != want)
      fail_msg("%s: got '%s', expected '%s'", row.what, got.empty() ? "" : got[0].c_str(), want.c_str());
  }
}

void families_are_whole_and_typed(void **) {
  const std::string text = wb::metrics::exposition(figures({topic("a", 1, 1), topic("b", 2, 1)}));
  std::map<std::string, std::string> types;
  std::string current;  // the family whose samples may follow
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      current = line.substr(7, line.find(' ', 7) - 7);
      if (types.count(current)) fail_msg("%s: a second HELP", current.c_str());
      types[current] = "";
    } else if (line.rfind("# TYPE ", 0) == 0) {
      if (line != "# TYPE " + current + " gauge" && line != "# TYPE " + current + " counter")
        fail_msg("'%s' does not type %s after its HELP", line.c_str(), current.c_str());
      types[current] = line.substr(line.rfind(' ') + 1);
    } else if (line.rfind(current, 0) != 0 || types[current].empty() ||
               (line[current.size()] != ' ' && line[current.size()] != '{')) {
      fail_msg("'%s' is not a sample of %s, the family above it", line.c_str(), current.c_str());
    }
  }
  for (const auto &[name, type] : types) {
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    if ((type == "counter") != total) fail_msg("%s is a %s", name.c_str(), type.c_str());
  }
  if (types.size() != 19) fail_msg("%zu families, expected 19", types.size());
}

void ages_and_uptime_are_seconds(void **) {
  // now 10 s; published at 8.5 s, never, and in the future (another machine's clock): 1.5 s, none, 0.
  const std::string text = wb::metrics::exposition(figures({topic("a", 3, 8'500'000'000), topic("b", 0, 0),
                                                            topic("c", 1, 12'000'000'000)}));
  const std::vector<std::string> ages = samples(text, "weightbus_topic_latest_age_seconds");
  assert_int_equal(ages.size(), 2);
  assert_string_equal(ages[0].c_str(), "weightbus_topic_latest_age_seconds{topic=\"a\"} 1.500");
  assert_string_equal(ages[1].c_str(), "weightbus_topic_latest_age_seconds{topic=\"c\"} 0.000");
  assert_string_equal(samples(text, "weightbus_broker_uptime_seconds")[0].c_str(),
                      "weightbus_broker_uptime_seconds 2.750");
  assert_string_equal(samples(text, "weightbus_broker_start_time_seconds")[0].c_str(),
                      "weightbus_broker_start_time_seconds 7.250");
  assert_string_equal(wb::metrics::version_string(100).c_str(), "0.1.0");
  assert_string_equal(wb::metrics::version_string(10203).c_str(), "1.2.3");
}

void leases_add_up_per_topic(void **) {
  TopicFigures t = topic("a", 9, 1);
  // client, version, latest, held: two clients, three leases, the oldest 4 behind, the longest held 2.5 s.
  const struct {
    uint32_t client;
    uint64_t version, latest, held_ns;
  } leases[] = {{3, 9, 9, 100}, {3, 5, 9, 2'500'000'000}, {8, 7, 9, 1'000'000'000}};
  for (const auto &l : leases) {
    wb_lease_info info = WB_LEASE_INFO_INIT;
    info.client_id = l.client;
    info.version = l.version;
    info.latest = l.latest;
    info.held_ns = l.held_ns;
    t.tally.add(info);
  }
  const std::string text = wb::metrics::exposition(figures({t}));
  assert_string_equal(samples(text, "weightbus_topic_leases")[0].c_str(), "weightbus_topic_leases{topic=\"a\"} 3");
  assert_string_equal(samples(text, "weightbus_topic_readers")[0].c_str(), "weightbus_topic_readers{topic=\"a\"} 2");
  assert_string_equal(samples(text, "weightbus_topic_max_reader_lag_versions")[0].c_str(),
                      "weightbus_topic_max_reader_lag_versions{topic=\"a\"} 4");
  assert_string_equal(samples(text, "weightbus_topic_longest_lease_hold_seconds")[0].c_str(),
                      "weightbus_topic_longest_lease_hold_seconds{topic=\"a\"} 2.500");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(topic_names_are_escaped_label_values),
      cmocka_unit_test(families_are_whole_and_typed),
      cmocka_unit_test(ages_and_uptime_are_seconds),
      cmocka_unit_test(leases_add_up_per_topic),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
