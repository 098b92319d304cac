// The control socket's address, for the broker that binds it and the library that connects to it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

namespace wb {

// Fills *addr with the AF_UNIX address of path; false when path does not fit in sun_path (then *addr holds no
// address). Inline, and without an error message, for the tools that set up an address without the library's
// error state (the CLI's `stop`); everything else calls socket_address.
inline bool fill_socket_address(const char *path, sockaddr_un *addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  size_t length = strlen(path);
  if (length >= sizeof(addr->sun_path)) return false;
  memcpy(addr->sun_path, path, length + 1);
  return true;
}

// Fills *addr with the AF_UNIX address of path. WB_E_INVAL, with a message, when path does not fit in
// sun_path (108 bytes with its NUL on Linux): a longer path would be cut, and name another socket.
int socket_address(const char *path, sockaddr_un *addr);

}  // namespace wb
