/* notify-loop: a reader that waits for versions in an event loop, through the topic's notify fd (weightbus.h,
 * wb_topic_notify_fd and wb_topic_notify_ack), and goes on across broker restarts.
 *
 *   notify-loop SOCKET TOPIC LAST
 *
 * prints "version N (M bytes of metadata)" for the latest version when it starts and for each newer one it
 * sees, until it has seen LAST or later; then exits 0. Exits 1 on an error, e.g. WB_E_BROKER_GONE when the
 * broker died and no successor took this client back within its timeout_ms. A real server would add the fd to
 * its own loop (epoll, libuv, asyncio) instead of calling poll(). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "weightbus/weightbus.h"

static int failed(const char *call, int rc) {
  fprintf(stderr, "notify-loop: %s: %s (%s)\n", call, wb_strerror(rc), wb_last_error());
  return 1;
}

/* What a server does with a new version: lease it, read it, let it go. */
static int read_version(wb_topic *topic, uint64_t version) {
  wb_snapshot *snapshot;
  const void *metadata;
  uint32_t size;
  int rc = wb_snapshot_acquire(topic, version, 1000, &snapshot);
  if (rc == WB_E_EXPIRED) return WB_OK; /* already overwritten by newer versions: the next wake-up brings one */
  if (rc != WB_OK) return failed("wb_snapshot_acquire", rc);
  wb_snapshot_metadata(snapshot, &metadata, &size, NULL);
  printf("version %" PRIu64 " (%" PRIu32 " bytes of metadata)\n", version, size);
  fflush(stdout);
  wb_snapshot_release(snapshot);
  return WB_OK;
}

static int follow(wb_topic *topic, uint64_t last) {
  int fd;
  uint64_t seen, latest;
  int rc = wb_topic_notify_fd(topic, &fd); /* subscribe first, */
  if (rc != WB_OK) return failed("wb_topic_notify_fd", rc);
  rc = wb_topic_latest(topic, &seen); /* then read the latest: no publish falls in between */
  if (rc != WB_OK) return failed("wb_topic_latest", rc);
  if (seen > 0 && read_version(topic, seen) != WB_OK) return 1;
  while (seen < last) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("notify-loop: poll");
      return 1;
    }
    rc = wb_topic_notify_ack(topic, &latest); /* each time the fd is readable: never read() it */
    if (rc != WB_OK) return failed("wb_topic_notify_ack", rc);
    if (latest <= seen) continue; /* a broker restart, or a version already seen */
    seen = latest;
    if (read_version(topic, seen) != WB_OK) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: notify-loop SOCKET TOPIC LAST\n");
    return 2;
  }
  wb_attach_options options = WB_ATTACH_OPTIONS_INIT;
  options.socket_path = argv[1];
  options.client_name = "notify-loop";
  wb_client *client;
  wb_topic *topic;
  int rc = wb_attach(&options, &client);
  if (rc != WB_OK) return failed("wb_attach", rc);
  rc = wb_topic_open(client, argv[2], &topic);
  int status = rc == WB_OK ? follow(topic, strtoull(argv[3], NULL, 10)) : failed("wb_topic_open", rc);
  wb_detach(client);
  return status;
}
