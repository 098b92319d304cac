#include "lease_holders.hpp"

#include <algorithm>
#include <map>

namespace wbcli {

std::vector<std::string> lease_holders(const weightbus::Client &client, const std::string &topic) {
  std::vector<std::string> lines;
  try {
    std::map<uint32_t, std::string> names;
    for (const wb_client_info &c : client.clients()) names[c.id] = fixed_string(c.name, sizeof c.name);
    for (const wb_lease_info &l : client.leases()) {
      if (fixed_string(l.topic, sizeof l.topic) != topic) continue;
      const std::string line = "pid " + std::to_string(l.pid) + " (" + names[l.client_id] + ") holding version " +
                               std::to_string(l.version);
      if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
    }
  } catch (const weightbus::Error &) {
    return {};
  }
  return lines;
}

std::string lease_holders_text(const weightbus::Client &client, const std::string &topic) {
  std::string text;
  for (const std::string &line : lease_holders(client, topic)) text += (text.empty() ? "" : ", ") + line;
  return text;
}

weightbus::Update begin_naming_holders(const weightbus::Client &client, weightbus::Topic &topic,
                                       const std::string &name, const std::string &command, int64_t timeout_ms) {
  const std::string what = "begin an update of '" + name + "'";
  try {
    return topic.begin(0);
  } catch (const weightbus::Error &e) {
    if (e.code() != WB_E_TIMEOUT) throw Failure(what, e);
  }
  for (const std::string &line : lease_holders(client, name))
    err_line("weightbus: " + command + ": waiting for " + line + " of '" + name + "'");
  try {
    return topic.begin(timeout_ms);
  } catch (const weightbus::Error &e) {
    const std::string still = lease_holders_text(client, name);
    throw Failure(what, e, still.empty() ? "" : "leases still held: " + still + " (see `weightbus stats`)");
  }
}

}  // namespace wbcli
