// Who holds leases on a topic, for a command that waits behind them (load's update of an R = 1 topic) or is
// refused because of them (rm): "pid N (name) holding version V", from the broker's lists of leases and clients.
#pragma once

#include <string>
#include <vector>

#include "common.hpp"

namespace wbcli {

// One line per holder and version, in the order the broker lists them. Best effort: empty when the lists cannot
// be read (the broker is gone, say), since the caller is already on its way to a wait or an error of its own.
std::vector<std::string> lease_holders(const weightbus::Client &client, const std::string &topic);
// The same lines joined with ", " (empty when there are none), for a hint.
std::string lease_holders_text(const weightbus::Client &client, const std::string &topic);

// Begins an update of topic; when leases make it wait, first prints who holds them ("weightbus: COMMAND: waiting
// for pid N (name) holding version V of 'TOPIC'"). A timeout's Failure names them again in its hint.
weightbus::Update begin_naming_holders(const weightbus::Client &client, weightbus::Topic &topic,
                                       const std::string &name, const std::string &command, int64_t timeout_ms);

}  // namespace wbcli
