/*
 * security.h — what the tests of tests/security/ share: becoming another uid (65534, "nobody"), running
 * weightbusd to see it refuse to start, and planting or removing shared-memory objects.
 */
#ifndef WEIGHTBUS_TESTS_SECURITY_H
#define WEIGHTBUS_TESTS_SECURITY_H

#include <stddef.h>

#define SEC_NOBODY 65534u

/* Whether the tests can act as uid 65534 (they run as root, as CI does, and setpriv is there). When not,
 * prints why, for the caller to skip(). */
int sec_can_be_nobody(void);

/* In a forked child: becomes uid and gid 65534 with no supplementary groups. 0, or -1 with errno. */
int sec_become_nobody(void);

/* Runs weightbusd --foreground --name name (--socket socket when not NULL; else with XDG_RUNTIME_DIR=xdg and
 * WEIGHTBUS_SOCKET unset), as uid 65534 through setpriv when as_nobody, and waits at most 10 s for it to exit.
 * Returns its exit code, or -1 when it was still running (it is then killed). Its stderr goes to err. */
int sec_run_broker(const char *socket, const char *name, const char *xdg, int as_nobody, char *err, size_t errlen);

/* The same, left running in the background: its pid, or -1. */
int sec_start_broker(const char *socket, const char *name, int as_nobody);

/* A fresh directory /tmp/wbsec-XXXXXX (0700, ours) in dir (64 bytes). 0 or -1. */
int sec_temp_dir(char *dir);

/* "/dev/shm/weightbus-<uid>-<name><suffix>" into path (256 bytes); returns path. */
const char *sec_shm_path(char *path, unsigned uid, const char *name, const char *suffix);

/* Removes /dev/shm/weightbus-<uid>-<name> and its allocations .a0 to .a15, whoever owns them. */
void sec_remove_shm(unsigned uid, const char *name);

/* Fails the cmocka test unless text contains each of the NULL-terminated needles. */
void sec_expect_text(const char *text, ...);

#endif /* WEIGHTBUS_TESTS_SECURITY_H */
