// The directory of the broker's socket, which also holds a daemonized broker's log: weightbusd creates it before
// opening the log, and the server again before binding (the same function, so that the two agree on it).
#pragma once

#include <string>

namespace wb::broker {

// Creates the socket's directory (0700) when it is missing; an existing one, such as an explicit --socket
// directory, is left as it is. WB_OK, or WB_E_IO naming the directory.
int prepare_directory(const std::string &socket_path);

// The directory of socket_path: "." for a path without one.
std::string socket_directory(const std::string &socket_path);

}  // namespace wb::broker
