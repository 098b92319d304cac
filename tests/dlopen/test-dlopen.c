/*
 * test-dlopen — a program that loads libweightbus.so.0 at run time, as plugins and language runtimes do: no
 * link-time dependency (run-test-dlopen.sh checks that it has no NEEDED entry for it), every function it uses
 * resolved with dlsym. It publishes a version and reads it back through a broker at $WEIGHTBUS_SOCKET.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <weightbus/weightbus.h> /* types and constants only: nothing here links against the library */

/* The functions this program uses, typed from their declarations in the header. */
#define WB_FUNCTIONS(X)                                                                                       \
  X(wb_version)                                                                                               \
  X(wb_strerror)                                                                                              \
  X(wb_last_error)                                                                                            \
  X(wb_attach)                                                                                                \
  X(wb_detach)                                                                                                \
  X(wb_topic_create)                                                                                          \
  X(wb_topic_open)                                                                                            \
  X(wb_topic_close)                                                                                           \
  X(wb_tensor_alloc)                                                                                          \
  X(wb_update_begin)                                                                                          \
  X(wb_update_tensor)                                                                                         \
  X(wb_update_publish)                                                                                        \
  X(wb_topic_wait)                                                                                            \
  X(wb_snapshot_acquire)                                                                                      \
  X(wb_snapshot_metadata)                                                                                     \
  X(wb_snapshot_tensor)                                                                                       \
  X(wb_snapshot_release)

#define DECLARE(name) static __typeof__(&name) p_##name;
WB_FUNCTIONS(DECLARE)

enum { ELEMENTS = 256 };

static int resolve(void *library) {
#define RESOLVE(name)                                                                                         \
  p_##name = (__typeof__(p_##name))dlsym(library, #name);                                                     \
  if (p_##name == NULL) {                                                                                     \
    fprintf(stderr, "test-dlopen: dlsym(%s): %s\n", #name, dlerror());                                        \
    return 1;                                                                                                 \
  }
  WB_FUNCTIONS(RESOLVE)
  return 0;
}

/* Prints the failed call with its code and message; returns 1 for the caller to return. */
static int failed(const char *call, int rc) {
  fprintf(stderr, "test-dlopen: %s: %s (%s)\n", call, p_wb_strerror(rc), p_wb_last_error());
  return 1;
}
#define CHECK(call)                                                                                           \
  do {                                                                                                        \
    int rc_ = (call);                                                                                         \
    if (rc_ != WB_OK) return failed(#call, rc_);                                                              \
  } while (0)

static int publish(wb_topic *topic) {
  wb_tensor_spec spec = WB_TENSOR_SPEC_INIT;
  spec.name = "weights";
  spec.dtype = WB_DTYPE_U32;
  spec.ndim = 1;
  spec.shape[0] = ELEMENTS;
  CHECK(p_wb_tensor_alloc(topic, &spec, 1));
  wb_update *update;
  CHECK(p_wb_update_begin(topic, 5000, &update));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  CHECK(p_wb_update_tensor(update, "weights", &info));
  uint32_t *weights = info.data;
  for (uint32_t i = 0; i < ELEMENTS; ++i) weights[i] = i * 3 + 1;
  uint64_t version;
  CHECK(p_wb_update_publish(update, "dlopen", 6, &version));
  return version == 1 ? 0 : failed("publish returned another version than 1", WB_E_STATE);
}

/* Early returns leave handles open: wb_detach closes and releases them. */
static int read_back(wb_client *client) {
  wb_topic *topic;
  CHECK(p_wb_topic_open(client, "dlopen", &topic));
  uint64_t version;
  CHECK(p_wb_topic_wait(topic, 0, 5000, &version));
  wb_snapshot *snapshot;
  CHECK(p_wb_snapshot_acquire(topic, version, 5000, &snapshot));
  const void *metadata;
  uint32_t size;
  uint64_t timestamp;
  CHECK(p_wb_snapshot_metadata(snapshot, &metadata, &size, &timestamp));
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  CHECK(p_wb_snapshot_tensor(snapshot, "weights", &info));
  const uint32_t *weights = info.data;
  int wrong = size != 6 || memcmp(metadata, "dlopen", 6) != 0 || info.nbytes != ELEMENTS * sizeof(uint32_t);
  for (uint32_t i = 0; i < ELEMENTS && !wrong; ++i) wrong = weights[i] != i * 3 + 1;
  if (wrong) fprintf(stderr, "test-dlopen: the snapshot does not hold what was published\n");
  CHECK(p_wb_snapshot_release(snapshot));
  CHECK(p_wb_topic_close(topic));
  return wrong;
}

static int publish_and_read_back(wb_client *client) {
  wb_topic_options options = WB_TOPIC_OPTIONS_INIT;
  wb_topic *topic;
  CHECK(p_wb_topic_create(client, "dlopen", &options, &topic));
  return publish(topic) || read_back(client);
}

static int run(void) {
  if (p_wb_version() != WB_VERSION) {
    fprintf(stderr, "test-dlopen: the library is version %u, the header %d\n", p_wb_version(), WB_VERSION);
    return 1;
  }
  wb_client *client;
  CHECK(p_wb_attach(NULL, &client)); /* the broker at $WEIGHTBUS_SOCKET */
  int rc = publish_and_read_back(client);
  CHECK(p_wb_detach(client));
  return rc;
}

int main(void) {
  void *library = dlopen("libweightbus.so.0", RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    fprintf(stderr, "test-dlopen: %s\n", dlerror());
    return 1;
  }
  int rc = resolve(library) || run();
  dlclose(library);
  if (rc == 0) printf("test-dlopen: published and read back through dlopen()ed libweightbus.so.0\n");
  return rc;
}
