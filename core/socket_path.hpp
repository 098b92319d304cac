// The control socket's address, for the broker that binds it and the library that connects to it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

namespace wb {

// Fills *addr with the AF_UNIX address of path. WB_E_INVAL, with a message, when path does not fit in
// sun_path (108 bytes with its NUL on Linux): a longer path would be cut, and name another socket.
int socket_address(const char *path, sockaddr_un *addr);

}  // namespace wb
