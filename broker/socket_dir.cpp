#include "socket_dir.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::broker {

int prepare_directory(const std::string &socket_path) {
  std::string dir = socket_path.substr(0, socket_path.rfind('/'));
  if (dir.empty() || mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return WB_OK;
  return fail_errno(("creating " + dir).c_str());
}

}  // namespace wb::broker
