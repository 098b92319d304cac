#include "socket_dir.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::broker {

std::string socket_directory(const std::string &socket_path) {
  size_t slash = socket_path.rfind('/');
  return slash == std::string::npos ? "." : socket_path.substr(0, slash);
}

int prepare_directory(const std::string &socket_path) {
  std::string dir = socket_directory(socket_path);
  if (dir == "." || dir.empty() || mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return WB_OK;
  return fail_errno(("creating " + dir).c_str());
}

}  // namespace wb::broker
