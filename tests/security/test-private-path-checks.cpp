// The checks of what another uid may control (core/private_path.cpp), decided from stat and SO_PEERCRED
// results alone: each row a case, accepted or refused with WB_E_PERM and a message naming what was wrong.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "private_path.hpp"

extern "C" {
#include "fixture.h"  // last: cmocka's macros clash with C++ library headers
}

namespace {

constexpr unsigned kUs = 1000;

struct Row {
  const char *what;
  mode_t mode;
  unsigned owner;
  int want;
  const char *message_has;  // for a refusal
};

struct stat stat_of(mode_t mode, unsigned owner) {
  struct stat st {};
  st.st_mode = mode;
  st.st_uid = owner;
  return st;
}

void expect(const Row &row, int rc) {
  if (rc != row.want) {
    fail_msg("%s: returned %d (%s), expected %d; wb_last_error: \"%s\"", row.what, rc, wb_strerror(rc), row.want,
             wb_last_error());
  }
  if (row.want != WB_OK && strstr(wb_last_error(), row.message_has) == nullptr) {
    fail_msg("%s: message \"%s\" lacks \"%s\"", row.what, wb_last_error(), row.message_has);
  }
}

void directories_are_private_only_when_ours_and_closed(void **) {
  const Row rows[] = {
      {"ours, 0700", S_IFDIR | 0700, kUs, WB_OK, ""},
      {"ours, 0755", S_IFDIR | 0755, kUs, WB_OK, ""},
      {"ours, 0500", S_IFDIR | 0500, kUs, WB_OK, ""},
      {"ours, group-writable", S_IFDIR | 0770, kUs, WB_E_PERM, "(uid 1000, mode 0770) is writable by its group"},
      {"ours, 0777", S_IFDIR | 0777, kUs, WB_E_PERM, "(uid 1000, mode 0777) is writable by others"},
      {"ours, sticky 1777", S_IFDIR | 01777, kUs, WB_E_PERM, "mode 1777) is writable by others"},
      {"root's /tmp", S_IFDIR | 01777, 0, WB_E_PERM, "/d is owned by uid 0 (mode 1777), not by uid 1000"},
      {"nobody's, 0700", S_IFDIR | 0700, 65534, WB_E_PERM, "/d is owned by uid 65534 (mode 0700), not by uid 1000"},
      {"nobody's, 0777", S_IFDIR | 0777, 65534, WB_E_PERM, "owned by uid 65534 (mode 0777)"},
      {"a symbolic link", S_IFLNK | 0777, kUs, WB_E_PERM, "/d is a symbolic link (owned by uid 1000)"},
      {"nobody's link", S_IFLNK | 0777, 65534, WB_E_PERM, "symbolic link (owned by uid 65534)"},
      {"a file", S_IFREG | 0600, kUs, WB_E_PERM, "/d is not a directory"},
      {"a socket", S_IFSOCK | 0600, kUs, WB_E_PERM, "/d is not a directory"},
  };
  for (const Row &row : rows) {
    struct stat st = stat_of(row.mode, row.owner);
    expect(row, wb::private_path::check_directory("/d", st, kUs));
  }
}

void every_directory_refusal_says_what_to_do(void **) {
  struct stat st = stat_of(S_IFDIR | 0777, 65534);
  assert_int_equal(wb::private_path::check_directory("/tmp/weightbus-1000", st, kUs), WB_E_PERM);
  assert_string_equal(wb_last_error(),
                      "socket directory /tmp/weightbus-1000 is owned by uid 65534 (mode 0777), not by uid 1000: "
                      "remove it, or set XDG_RUNTIME_DIR, --socket or WEIGHTBUS_SOCKET to a directory only you can "
                      "write");
}

void shared_memory_objects_must_be_ours_and_0600(void **) {
  const Row rows[] = {
      {"ours, 0600", S_IFREG | 0600, kUs, WB_OK, ""},
      {"ours, 0666", S_IFREG | 0666, kUs, WB_E_PERM, "seg has mode 0666, not 0600 (owner uid 1000): fix it"},
      {"ours, 0644", S_IFREG | 0644, kUs, WB_E_PERM, "mode 0644"},
      {"ours, 0400", S_IFREG | 0400, kUs, WB_E_PERM, "mode 0400"},
      {"ours, 0700", S_IFREG | 0700, kUs, WB_E_PERM, "mode 0700"},
      {"ours, setuid 0600", S_IFREG | 04600, kUs, WB_E_PERM, "mode 4600"},
      {"nobody's, 0600", S_IFREG | 0600, 65534, WB_E_PERM, "seg is owned by uid 65534 (mode 0600), not by uid 1000"},
      {"root's, 0600", S_IFREG | 0600, 0, WB_E_PERM, "owned by uid 0"},
      {"a FIFO", S_IFIFO | 0600, kUs, WB_E_PERM, "seg is not a regular shared-memory object (owned by uid 1000"},
      {"a directory", S_IFDIR | 0600, kUs, WB_E_PERM, "not a regular shared-memory object"},
      {"a link", S_IFLNK | 0600, kUs, WB_E_PERM, "not a regular shared-memory object"},
  };
  for (const Row &row : rows) {
    struct stat st = stat_of(row.mode, row.owner);
    expect(row, wb::private_path::check_object("seg", st, kUs, "fix it"));
  }
}

void the_peer_must_run_as_us(void **) {
  const struct {
    unsigned peer;
    unsigned us;
    int want;
  } rows[] = {{kUs, kUs, WB_OK}, {0, 0, WB_OK}, {65534, kUs, WB_E_PERM}, {0, kUs, WB_E_PERM}, {kUs, 0, WB_E_PERM}};
  for (const auto &row : rows) {
    ucred cred{};
    cred.pid = 42;
    cred.uid = row.peer;
    int rc = wb::private_path::check_peer("/run/x.sock", cred, row.us);
    if (rc != row.want) fail_msg("peer uid %u, us %u: returned %d, expected %d", row.peer, row.us, rc, row.want);
    if (rc == WB_OK) continue;
    char want[200];
    snprintf(want, sizeof(want), "the process listening at /run/x.sock (pid 42) runs as uid %u, not as uid %u",
             row.peer, row.us);
    if (strstr(wb_last_error(), want) == nullptr) fail_msg("message \"%s\" lacks \"%s\"", wb_last_error(), want);
  }
}

void the_socket_directory_is_the_last_slash(void **) {
  assert_string_equal(wb::private_path::socket_directory("/run/user/1000/weightbus/default.sock").c_str(),
                      "/run/user/1000/weightbus");
  assert_string_equal(wb::private_path::socket_directory("/x.sock").c_str(), "/");
  assert_string_equal(wb::private_path::socket_directory("x.sock").c_str(), ".");
  assert_string_equal(wb::private_path::socket_directory("dir/x.sock").c_str(), "dir");
}

void a_missing_directory_is_not_found_and_a_real_one_is_looked_at(void **) {
  char dir[] = "/tmp/wbtest-private-XXXXXX";
  assert_non_null(mkdtemp(dir));
  std::string missing = std::string(dir) + "/none";
  assert_int_equal(wb::private_path::check_directory(missing.c_str(), geteuid()), WB_E_NOT_FOUND);
  assert_int_equal(wb::private_path::check_directory(dir, geteuid()), WB_OK);
  assert_int_equal(chmod(dir, 0777), 0);
  assert_int_equal(wb::private_path::check_socket_directory((std::string(dir) + "/x.sock").c_str(), geteuid()),
                   WB_E_PERM);
  assert_non_null(strstr(wb_last_error(), dir));
  assert_int_equal(rmdir(dir), 0);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(directories_are_private_only_when_ours_and_closed),
      cmocka_unit_test(every_directory_refusal_says_what_to_do),
      cmocka_unit_test(shared_memory_objects_must_be_ours_and_0600),
      cmocka_unit_test(the_peer_must_run_as_us),
      cmocka_unit_test(the_socket_directory_is_the_last_slash),
      cmocka_unit_test(a_missing_directory_is_not_found_and_a_real_one_is_looked_at),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
