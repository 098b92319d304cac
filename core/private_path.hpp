// What a process of uid U trusts of what another process could have made: the directory of the control socket,
// the peer at its other end, and the shared-memory objects behind the descriptors it maps. One implementation,
// used by the broker (socket directory, adopted and created objects) and by the library (before it connects,
// after, and before it maps what the broker sent). Each check is WB_OK, or WB_E_PERM with a message naming the
// path or object, its owner and mode, and what to do. The overloads taking a stat or ucred decide alone, so
// that tests and the fuzzer (tests/fuzz/fuzz-peer-checks.cpp) drive them with any values.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>

#include <string>

namespace wb::private_path {

// The advice the directory refusals end with.
inline constexpr const char *kDirectoryAdvice =
    "remove it, or set XDG_RUNTIME_DIR, --socket or WEIGHTBUS_SOCKET to a directory only you can write";

// The advice a refused descriptor from the broker ends with.
inline constexpr const char *kReceivedObjectAdvice =
    "your broker did not make it so; refusing to map it (stop the broker and remove what it left in /dev/shm)";

// A directory private to uid: lstat says a real directory (not a symbolic link), owned by uid, not writable by
// group or others. `st` is lstat's result for `path`.
int check_directory(const char *path, const struct stat &st, unsigned uid);

// lstat(path) and the check above. A missing directory is WB_E_NOT_FOUND without a message (the caller creates
// it, or reports the missing socket in its own words); another lstat failure is WB_E_IO.
int check_directory(const char *path, unsigned uid);

// The directory holding socket_path: "." when it names none.
std::string socket_directory(const std::string &socket_path);

// check_directory of socket_path's directory.
int check_socket_directory(const char *socket_path, unsigned uid);

// The peer of a control socket at `path` runs as uid. `cred` is SO_PEERCRED's answer.
int check_peer(const char *path, const ucred &cred, unsigned uid);

// SO_PEERCRED of the connected socket and the check above.
int check_peer(const char *path, int sock, unsigned uid);

// A shared-memory object (`what` names it) that uid may map: a regular file owned by uid with mode exactly
// 0600. `advice` ends the refusal. `st` is fstat's result.
int check_object(const char *what, const struct stat &st, unsigned uid, const char *advice);

// fstat(fd) and the check above.
int check_object(const char *what, int fd, unsigned uid, const char *advice);

}  // namespace wb::private_path
