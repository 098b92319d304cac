// The directory of the broker's socket, which also holds a daemonized broker's log: weightbusd creates it before
// opening the log, and the server again before binding (the same function, so that the two agree on it).
#pragma once

#include <string>

namespace wb::broker {

// Creates the socket's directory (0700) when it is missing, then checks it, made now or found (an explicit
// --socket directory too), with private_path::check_directory: a real directory of the broker's uid that group
// and others cannot write. WB_OK, WB_E_PERM naming the directory, its owner and mode, or WB_E_IO.
int prepare_directory(const std::string &socket_path);

}  // namespace wb::broker
