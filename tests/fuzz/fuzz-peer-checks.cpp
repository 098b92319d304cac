// libFuzzer harness: the checks a client runs on what comes from the broker's side before it trusts it, and
// the broker on what it finds (core/private_path.cpp): the socket directory's lstat, the listener's
// SO_PEERCRED, and the fstat of each shared-memory descriptor it would map, with any field values, plus a real
// object of ours whose mode the input sets, checked through fstat. Beyond what ASan and UBSan catch: each
// verdict must be the rule's (stated here again, independently), and a refusal must be WB_E_PERM with a
// message naming the path or object.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "error.hpp"
#include "peer_checks_input.hpp"
#include "private_path.hpp"
#include "weightbus/weightbus.h"

namespace pp = wb::private_path;

namespace {

[[noreturn]] void broken(const char *what, int rc) {
  fprintf(stderr, "fuzz-peer-checks: %s (returned %d: \"%s\")\n", what, rc, wb_last_error());
  abort();
}

void expect(bool accept, int rc, const std::string &name, const char *what) {
  if (accept != (rc == WB_OK)) broken(what, rc);
  if (rc == WB_OK) return;
  if (rc != WB_E_PERM) broken("a refusal other than WB_E_PERM", rc);
  if (strstr(wb_last_error(), name.c_str()) == nullptr) broken("a refusal that does not name its path", rc);
}

// A shared-memory object of ours, made once: its mode is what each input varies.
int our_object() {
  static int fd = [] {
    int made = memfd_create("fuzz-peer-checks", MFD_CLOEXEC);
    if (made < 0) broken("memfd_create failed", made);
    return made;
  }();
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  PeerChecksInput in{};
  if (size < sizeof(in)) return 0;
  memcpy(&in, data, sizeof(in));
  std::string name(reinterpret_cast<const char *>(data) + sizeof(in), size - sizeof(in));
  name = name.substr(0, name.find('\0'));
  if (name.empty() || name.size() > 200) return 0;
  struct stat st {};
  st.st_mode = in.st_mode;
  st.st_uid = in.st_uid;

  wb::clear_error();
  bool private_dir = S_ISDIR(st.st_mode) && st.st_uid == in.us && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
  expect(private_dir, pp::check_directory(name.c_str(), st, in.us), name, "a wrong verdict on a directory");

  bool ours = S_ISREG(st.st_mode) && st.st_uid == in.us && (st.st_mode & 07777) == 0600;
  expect(ours, pp::check_object(name.c_str(), st, in.us, "advice"), name, "a wrong verdict on an object");

  ucred cred{};
  cred.uid = in.peer_uid;
  cred.pid = in.peer_pid;
  expect(in.peer_uid == in.us, pp::check_peer(name.c_str(), cred, in.us), name, "a wrong verdict on a peer");

  if (fchmod(our_object(), in.fd_mode & 07777) != 0) broken("fchmod failed", WB_E_IO);
  expect((in.fd_mode & 07777) == 0600, pp::check_object(name.c_str(), our_object(), geteuid(), "advice"), name,
         "a wrong verdict on a real object");
  return 0;
}
