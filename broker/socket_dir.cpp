#include "socket_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "error.hpp"
#include "private_path.hpp"
#include "weightbus/weightbus.h"

namespace wb::broker {

int prepare_directory(const std::string &socket_path) {
  std::string dir = private_path::socket_directory(socket_path);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno(("creating " + dir).c_str());
  // Whatever existed before is checked as what we made: another uid may have made it first, or made it a link.
  int rc = private_path::check_directory(dir.c_str(), geteuid());
  return rc == WB_E_NOT_FOUND ? fail(WB_E_IO, "%s vanished as it was created", dir.c_str()) : rc;
}

}  // namespace wb::broker
