#include "private_path.hpp"

#include <cerrno>
#include <string>

#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::private_path {

namespace {

unsigned mode_bits(const struct stat &st) { return unsigned(st.st_mode & 07777); }

}  // namespace

int check_directory(const char *path, const struct stat &st, unsigned uid) {
  if (S_ISLNK(st.st_mode)) {
    return fail(WB_E_PERM, "socket directory %s is a symbolic link (owned by uid %u), not a directory: %s", path,
                unsigned(st.st_uid), kDirectoryAdvice);
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail(WB_E_PERM, "socket directory %s is not a directory (owned by uid %u, mode %04o): %s", path,
                unsigned(st.st_uid), mode_bits(st), kDirectoryAdvice);
  }
  if (st.st_uid != uid) {
    return fail(WB_E_PERM, "socket directory %s is owned by uid %u (mode %04o), not by uid %u: %s", path,
                unsigned(st.st_uid), mode_bits(st), uid, kDirectoryAdvice);
  }
  // Sticky or not: a directory others can write lets them plant the socket's name before the broker does.
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fail(WB_E_PERM, "socket directory %s (uid %u, mode %04o) is writable by %s: %s (chmod 700 %s)", path,
                uid, mode_bits(st), (st.st_mode & S_IWOTH) ? "others" : "its group", kDirectoryAdvice, path);
  }
  return WB_OK;
}

int check_directory(const char *path, unsigned uid) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return WB_E_NOT_FOUND;
    return fail_errno((std::string("lstat of the socket directory ") + path).c_str());
  }
  return check_directory(path, st, uid);
}

std::string socket_directory(const std::string &socket_path) {
  size_t slash = socket_path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : socket_path.substr(0, slash);
}

int check_socket_directory(const char *socket_path, unsigned uid) {
  return check_directory(socket_directory(socket_path).c_str(), uid);
}

int check_peer(const char *path, const ucred &cred, unsigned uid) {
  if (cred.uid == uid) return WB_OK;
  return fail(WB_E_PERM, "the process listening at %s (pid %d) runs as uid %u, not as uid %u: it is not your "
              "broker, and nothing was sent to it. Check who created %s", path, int(cred.pid), unsigned(cred.uid),
              uid, path);
}

int check_peer(const char *path, int sock, unsigned uid) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return fail_errno("SO_PEERCRED");
  return check_peer(path, cred, uid);
}

int check_object(const char *what, const struct stat &st, unsigned uid, const char *advice) {
  if (!S_ISREG(st.st_mode)) {
    return fail(WB_E_PERM, "%s is not a regular shared-memory object (owned by uid %u, mode %06o): %s", what,
                unsigned(st.st_uid), unsigned(st.st_mode), advice);
  }
  if (st.st_uid != uid) {
    return fail(WB_E_PERM, "%s is owned by uid %u (mode %04o), not by uid %u: %s", what, unsigned(st.st_uid),
                mode_bits(st), uid, advice);
  }
  // Exactly 0600, as the broker makes them: wider lets others read or change tensors, narrower is not its work.
  if (mode_bits(st) != 0600) {
    return fail(WB_E_PERM, "%s has mode %04o, not 0600 (owner uid %u): %s", what, mode_bits(st), uid, advice);
  }
  return WB_OK;
}

int check_object(const char *what, int fd, unsigned uid, const char *advice) {
  struct stat st;
  if (fstat(fd, &st) != 0) return fail_errno((std::string("fstat of ") + what).c_str());
  return check_object(what, st, uid, advice);
}

}  // namespace wb::private_path
