#include "socket_path.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "error.hpp"
#include "geometry.hpp"
#include "weightbus/weightbus.h"

namespace wb {

int socket_address(const char *path, sockaddr_un *addr) {
  if (fill_socket_address(path, addr)) return WB_OK;
  return fail(WB_E_INVAL, "socket path '%s' is longer than %zu bytes", path, sizeof(addr->sun_path) - 1);
}

}  // namespace wb

extern "C" WB_API int wb_default_socket_path(const char *broker_name, char *buf, size_t buf_size) try {
  if (buf == nullptr || buf_size == 0) return wb::fail(WB_E_INVAL, "buffer is NULL or empty");
  const char *explicit_path = getenv("WEIGHTBUS_SOCKET");
  if (broker_name == nullptr) broker_name = getenv("WEIGHTBUS_NAME");
  if (broker_name == nullptr || broker_name[0] == '\0') broker_name = "default";
  int rc = wb::geometry::check_name(broker_name, "broker");
  if (rc != WB_OK) return rc;
  int n;
  const char *runtime_dir = getenv("XDG_RUNTIME_DIR");
  if (explicit_path != nullptr && explicit_path[0] != '\0') {
    n = snprintf(buf, buf_size, "%s", explicit_path);
  } else if (runtime_dir != nullptr && runtime_dir[0] == '/') {
    n = snprintf(buf, buf_size, "%s/weightbus/%s.sock", runtime_dir, broker_name);
  } else {
    n = snprintf(buf, buf_size, "/tmp/weightbus-%u/%s.sock", unsigned(getuid()), broker_name);
  }
  if (n < 0 || size_t(n) >= buf_size) return wb::fail(WB_E_SIZE, "socket path does not fit in %zu bytes", buf_size);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
