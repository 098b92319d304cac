/*
 * weightbus.h — share tensors between processes on one node and move through versions of them.
 *
 * This header is the manual of the C API. Read "Concepts" first, then the sections in the order a program calls
 * them: attach, topics, tensors, updates (publisher), versions and snapshots (reader), CUDA tensors, listing, the
 * broker. "Caveats" at the end lists what the library does not do.
 *
 * Concepts
 * --------
 * A broker (weightbusd) owns a shared-memory segment holding the registry: topics, tensors, allocations, a ring
 * of version records per topic and a table of clients with their leases. Clients attach to it over a Unix
 * socket, map the segment, and from then on read it without locks and without talking to the broker: waiting
 * for, acquiring and releasing versions are shared-memory operations (atomics and a futex).
 *
 *   topic     a named set of tensors with one version sequence, e.g. one model. One publisher at a time.
 *   tensor    name, dtype, shape, strides and where its bytes live. Tensors are allocated by the broker in
 *             shareable memory (POSIX shm), 64-byte aligned, many tensors per allocation, or live on a GPU (see
 *             "CUDA tensors": allocated by the library or registered where they already are).
 *   view      a tensor defined as a strided window on another tensor's bytes; it costs no storage.
 *   replica   each tensor has R copies of its storage (R = 1..WB_MAX_REPLICAS, chosen at topic creation).
 *             R = 1 shares in place: an update waits until no reader holds a lease. R >= 2 lets the publisher
 *             write version v+1 into a copy no reader uses while readers keep reading version v.
 *   version   a number per topic, 1, 2, 3, ... A version changes some tensors (the others keep the bytes they
 *             had) and carries up to WB_METADATA_MAX bytes of opaque user metadata (e.g. the training step).
 *   lease     a reader's pin on one version (a snapshot). While it is held no byte of that version changes.
 *
 * Conventions
 * -----------
 * Every function returns int: WB_OK (0) or a negative WB_E_* code. wb_strerror() names a code;
 * wb_last_error() returns a message for the last failure on the calling thread, naming what was wrong.
 * Options structs begin with struct_size and are initialised with their ..._INIT macro, so that fields added in
 * later versions keep old callers working. Handles are opaque and created/destroyed in pairs. All timeouts are
 * in milliseconds: a negative timeout waits without a limit (but still returns WB_E_BROKER_GONE when the broker
 * dies and no successor takes the client back), 0 polls once. Strides are in elements, as in DLPack.
 *
 * No exception or signal (SIGPIPE included) leaves the library. Running out of memory inside any call returns
 * WB_E_NOMEM with a message naming the call ("wb_topic_create: out of memory"); the call allocates what it
 * needs before it acts, or undoes what it did, so that handles and broker stay consistent and calling again
 * works (the calls' lists of errors below do not repeat WB_E_NOMEM). A broker that runs out of memory answers
 * the request WB_E_NOMEM, having changed nothing, and keeps serving. The deleters of DLPack exports allocate
 * nothing and cannot fail.
 *
 * Broker restarts: a weightbusd started after its predecessor was killed (same name) adopts the segment it
 * left, with every topic and version. A client of the dead broker resumes with it on its own, at its next
 * call or from inside a blocked wait: it keeps its id, handles, leases, open update and publisher roles, and
 * waits go on. Calls that need the broker return WB_E_BROKER_GONE while none is there. Blocking calls go on
 * through the outage: waits and acquire need only shared memory and keep waiting, begin and revoke wait for a
 * successor to take the client back (within their own timeout_ms: WB_E_TIMEOUT), and a notify fd becomes
 * readable when one does (wb_topic_notify_ack). All of them return WB_E_BROKER_GONE once no successor may come:
 * none took the client back within the client's timeout_ms from the death, the segment is gone (the broker
 * exited cleanly) or a successor that started afresh refused the client. Attach again then.
 *
 * Trust: the library talks only to a broker of its own uid, and maps only what that broker made. Before it
 * connects (attach, and resuming with a successor), the socket's directory must be a real directory of this
 * uid that group and others cannot write; once connected, the listening process must run as this uid
 * (SO_PEERCRED: a root client accepts only a root broker), or nothing is sent. Each shared-memory object the
 * broker hands over must be a regular file of this uid with mode 0600 (fstat) before it is mapped: the segment
 * on attach, and a tensor's host allocation when a call first reads or writes that tensor, which otherwise
 * returns WB_E_PERM naming the object. See docs/security.md.
 *
 * Thread safety: a wb_client, its topics and snapshots may be used from several threads at once, except that
 * one wb_update must be used by one thread at a time and a handle must not be destroyed while another thread
 * uses it.
 */
#ifndef WEIGHTBUS_WEIGHTBUS_H
#define WEIGHTBUS_WEIGHTBUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WB_BUILDING_LIBRARY)
#define WB_API __attribute__((visibility("default")))
#else
#define WB_API
#endif

/* ---------------------------------------------------------------------------------------------------------- */
/* Version                                                                                                     */
/* ---------------------------------------------------------------------------------------------------------- */

#define WB_VERSION_MAJOR 0
#define WB_VERSION_MINOR 1
#define WB_VERSION_PATCH 0
#define WB_VERSION ((WB_VERSION_MAJOR * 10000) + (WB_VERSION_MINOR * 100) + WB_VERSION_PATCH)
#define WB_VERSION_STRING "0.1.0"

/* The library's version at run time, as WB_VERSION computes it; compare with WB_VERSION to detect a mismatch. */
WB_API uint32_t wb_version(void);
/* The same as a string, e.g. "0.1.0". */
WB_API const char *wb_version_string(void);

/* ---------------------------------------------------------------------------------------------------------- */
/* Limits                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

#define WB_NAME_MAX 255        /* bytes of a topic or tensor name, without the terminating NUL */
#define WB_MAX_DIMS 8          /* dimensions of a tensor */
#define WB_MAX_REPLICAS 4      /* replicas of a topic */
#define WB_METADATA_MAX 4096   /* bytes of user metadata per version */
#define WB_ALIGNMENT 64        /* every tensor allocated by the broker starts on this boundary */
#define WB_VERSION_MAX ((UINT64_C(1) << 48) - 1) /* versions are 48-bit: ample for 8 years at 1 MHz */
#define WB_CUDA_ALIGNMENT 256  /* every tensor of wb_tensor_alloc_cuda starts on this boundary */
#define WB_MAX_RANKS 64        /* publishing ranks of a sharded topic */

/* ---------------------------------------------------------------------------------------------------------- */
/* Errors                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

/* Every code, once: XX(name, value, text) for each, in the shape of libuv's UV_ERRNO_MAP. The constants below
 * and wb_strerror ("name: text") are generated from it, and the bindings' tables are checked against it
 * (tests/bindings/layout-dump). The comment above each entry is what the code means in the calls' lists of
 * errors below. Codes are never renumbered; new ones take the next negative value. */
#define WB_ERROR_MAP(XX)                                                                                        \
  /* success */                                                                                                 \
  XX(WB_OK, 0, "success")                                                                                       \
  /* an argument is NULL, out of range or malformed */                                                          \
  XX(WB_E_INVAL, -1, "invalid argument")                                                                        \
  /* this process, or the broker, ran out of memory */                                                          \
  XX(WB_E_NOMEM, -2, "out of memory")                                                                           \
  /* no topic/tensor of that name, or the version is not published */                                           \
  XX(WB_E_NOT_FOUND, -3, "no such topic, tensor or version")                                                    \
  /* a tensor of that name exists with another dtype or shape */                                                \
  XX(WB_E_EXISTS, -4, "exists with another definition")                                                         \
  /* a name is longer than WB_NAME_MAX bytes (or empty) */                                                      \
  XX(WB_E_NAME_TOO_LONG, -5, "name empty or longer than 255 bytes")                                             \
  /* unknown dtype, or a view's dtype does not fit its parent */                                                \
  XX(WB_E_DTYPE, -6, "unknown or unfitting dtype")                                                              \
  /* bad ndim, negative extent, or element count overflows */                                                   \
  XX(WB_E_SHAPE, -7, "invalid shape")                                                                           \
  /* a byte range falls outside its storage, or metadata is too large */                                        \
  XX(WB_E_SIZE, -8, "size or byte range out of bounds")                                                         \
  /* a capacity of the broker (topics, tensors, clients, leases...) or a per-client limit                       \
     (weightbusd --max-*-per-client) is exhausted */                                                            \
  XX(WB_E_NOSPC, -9, "broker capacity exhausted")                                                               \
  /* the call needs the publisher's handle and this is a reader's */                                            \
  XX(WB_E_ROLE, -10, "only the topic's publisher may do this")                                                  \
  /* the topic already has a live publisher */                                                                  \
  XX(WB_E_BUSY, -11, "the topic has a live publisher")                                                          \
  /* the wait ran out; nothing was changed */                                                                   \
  XX(WB_E_TIMEOUT, -12, "the wait timed out")                                                                   \
  /* the broker died or closed the connection */                                                                \
  XX(WB_E_BROKER_GONE, -13, "the broker is gone")                                                               \
  /* the segment or broker speaks another layout/protocol version */                                            \
  XX(WB_E_ABI_MISMATCH, -14, "layout or protocol version differs")                                              \
  /* R = 1 topic left half-written by a publisher that died; wait for a new version */                          \
  XX(WB_E_DIRTY, -15, "tensors were left half-written by a publisher that died or aborted")                     \
  /* the version is older than what the topic still keeps */                                                    \
  XX(WB_E_EXPIRED, -16, "the version is no longer kept")                                                        \
  /* the call does not fit the object's state (e.g. layout sealed, update open) */                              \
  XX(WB_E_STATE, -17, "not allowed in the current state")                                                       \
  /* refused by a credential check: the broker's of this uid, or this library's of the broker's socket          \
     directory, uid or shared memory (see Trust above) */                                                       \
  XX(WB_E_PERM, -18, "permission denied")                                                                       \
  /* a malformed message from the peer */                                                                       \
  XX(WB_E_PROTOCOL, -19, "malformed message")                                                                   \
  /* a system call failed; wb_last_error() has errno's text */                                                  \
  XX(WB_E_IO, -20, "system call failed")                                                                        \
  /* CUDA is needed and absent */                                                                               \
  XX(WB_E_NO_CUDA, -21, "CUDA is not available")                                                                \
  /* the tensor or allocation was revoked by its exporter */                                                    \
  XX(WB_E_STALE, -22, "revoked by its exporter")                                                                \
  /* no broker listens at the socket path */                                                                    \
  XX(WB_E_CONNECT, -23, "no broker at the socket path")                                                         \
  /* a CUDA driver call failed; wb_last_error() names the call and its CUresult */                              \
  XX(WB_E_CUDA, -24, "a CUDA driver call failed")                                                               \
  /* the shards of a sharded topic overlap, leave part of a logical tensor uncovered, or disagree on its dtype  \
   * or logical shape; wb_last_error() names the tensor, the ranks and the region */                           \
  XX(WB_E_LAYOUT, -25, "shards overlap, leave a gap or disagree")

/* The codes as constants of type int, made from the list: WB_OK, WB_E_INVAL, ... In C, enumeration constants
 * (which are ints); in C++, where an enum's constants have a type of their own (a lambda returning WB_OK in
 * one place and an int in another would not compile), const ints. They are not macros: #ifdef cannot test
 * for one (compare WB_VERSION instead). */
#ifdef __cplusplus
#define WB_ERROR_CONSTANT_(name, value, text) static const int name = value;
WB_ERROR_MAP(WB_ERROR_CONSTANT_)
#else
#define WB_ERROR_CONSTANT_(name, value, text) name = value,
enum { WB_ERROR_MAP(WB_ERROR_CONSTANT_) };
#endif
#undef WB_ERROR_CONSTANT_

/* A constant string naming the code, e.g. "WB_E_TIMEOUT: the wait timed out". Never NULL. */
WB_API const char *wb_strerror(int code);
/* The message of the last failing call on this thread (empty string if none). Valid until the next call. */
WB_API const char *wb_last_error(void);

/* ---------------------------------------------------------------------------------------------------------- */
/* Types                                                                                                       */
/* ---------------------------------------------------------------------------------------------------------- */

typedef enum wb_dtype {
  WB_DTYPE_BOOL = 1,
  WB_DTYPE_U8 = 2,
  WB_DTYPE_I8 = 3,
  WB_DTYPE_I16 = 4,
  WB_DTYPE_I32 = 5,
  WB_DTYPE_I64 = 6,
  WB_DTYPE_F16 = 7,
  WB_DTYPE_BF16 = 8,
  WB_DTYPE_F32 = 9,
  WB_DTYPE_F64 = 10,
  WB_DTYPE_F8E4M3 = 11,
  WB_DTYPE_F8E5M2 = 12,
  WB_DTYPE_U16 = 13,
  WB_DTYPE_U32 = 14,
  WB_DTYPE_U64 = 15
} wb_dtype;

/* Bytes per element of a dtype, 0 for an unknown one. */
WB_API uint32_t wb_dtype_size(int32_t dtype);
/* Lower-case name ("bf16", "f8e4m3", ...) or NULL for an unknown dtype. */
WB_API const char *wb_dtype_name(int32_t dtype);

typedef enum wb_device_type { WB_DEVICE_HOST = 1, WB_DEVICE_CUDA = 2 } wb_device_type;

typedef struct wb_client wb_client;     /* one attachment to a broker */
typedef struct wb_topic wb_topic;       /* a topic opened as publisher or reader */
typedef struct wb_update wb_update;     /* an update being written (publisher) */
typedef struct wb_snapshot wb_snapshot; /* a lease on one version (reader) */

/* ---------------------------------------------------------------------------------------------------------- */
/* Attach                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct wb_attach_options {
  uint32_t struct_size;
  /* Socket path. NULL: $WEIGHTBUS_SOCKET, else $XDG_RUNTIME_DIR/weightbus/<broker>.sock, else
   * /tmp/weightbus-<uid>/<broker>.sock. */
  const char *socket_path;
  /* Broker name used in the default path. NULL: $WEIGHTBUS_NAME, else "default". */
  const char *broker_name;
  /* A label shown by `weightbus clients` (at most 31 bytes are kept). NULL: the program's name. */
  const char *client_name;
  /* How long to wait for the broker's answer to each control request, and how long blocking calls wait for a
   * successor after the broker dies (negative: without a limit). */
  int64_t timeout_ms;
} wb_attach_options;

#define WB_ATTACH_OPTIONS_INIT {sizeof(wb_attach_options), NULL, NULL, NULL, 5000}

/* Resolves the socket path the way wb_attach does, into buf. WB_E_SIZE if it does not fit. */
WB_API int wb_default_socket_path(const char *broker_name, char *buf, size_t buf_size);

/* Connects to the broker, checks that it speaks this library's layout and maps its segment.
 * opts may be NULL for defaults. Errors: WB_E_INVAL, WB_E_CONNECT (nobody listens), WB_E_PERM (the broker
 * refused this uid; or this library refused the broker: the socket's directory is another uid's, writable by
 * group or others, or a symbolic link; the listening process runs as another uid; the segment is not this
 * uid's with mode 0600 — the message names the path, uid or mode), WB_E_ABI_MISMATCH, WB_E_NOSPC (client table
 * full, or the broker has no descriptor to spare for the connection: the message names RLIMIT_NOFILE),
 * WB_E_TIMEOUT, WB_E_IO, WB_E_NOMEM. */
WB_API int wb_attach(const wb_attach_options *opts, wb_client **out);

/* Closes every topic and releases every lease of this client, then disconnects and waits (at most the attach
 * timeout) until the broker has freed the client's slot. Safe after the broker died (it resumes first with a
 * successor, if one is there, so that the successor frees the slot now). Snapshots and updates still open are
 * released/aborted. Errors: WB_E_INVAL (NULL), WB_E_NOMEM (resuming with a successor ran out of memory:
 * nothing was done; call it again). */
WB_API int wb_detach(wb_client *client);

/* Our slot in the broker's client table (what `weightbus clients` shows). */
WB_API int wb_client_id(const wb_client *client, uint32_t *id);

/* ---------------------------------------------------------------------------------------------------------- */
/* Topics                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct wb_topic_options {
  uint32_t struct_size;
  uint32_t replicas; /* 1..WB_MAX_REPLICAS */
} wb_topic_options;

#define WB_TOPIC_OPTIONS_INIT {sizeof(wb_topic_options), 2}

/* Creates a topic and becomes its publisher. If the topic exists and its publisher is gone (it died or closed
 * the topic), this takes it over: tensors and versions stay, and replicas must match.
 * Errors: WB_E_INVAL (NULL, replicas out of range, not the existing topic's replicas, or a sharded topic's
 * name: see wb_topic_create_rank), WB_E_NAME_TOO_LONG,
 * WB_E_BUSY (a live publisher holds it), WB_E_NOSPC (topic table full), WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_topic_create(wb_client *client, const char *name, const wb_topic_options *opts, wb_topic **out);

/* Opens an existing topic as a reader. Errors: WB_E_INVAL, WB_E_NAME_TOO_LONG, WB_E_NOT_FOUND,
 * WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_topic_open(wb_client *client, const char *name, wb_topic **out);

/* Closes the handle. A publisher's close leaves the topic with its tensors and versions for readers and for a
 * later publisher; an update still open is aborted. Errors: WB_E_INVAL, WB_E_STATE (snapshots still held),
 * WB_E_NOMEM (the handle stays open; an update may have been aborted). */
WB_API int wb_topic_close(wb_topic *topic);

/* Removes a topic: its name is free for a new topic, its tensors and versions are gone, and its host memory is
 * freed once no process maps it any more (processes that mapped it keep their mappings). Removal needs the
 * topic unused: no publisher (its publisher closed it or died) and no lease on any of its versions.
 * Handles of the topic that processes still hold (wb_topic_open) stay safe to use: from then on their calls
 * return WB_E_NOT_FOUND ("was removed"); wb_topic_close frees them. A blocked wb_topic_wait or
 * wb_snapshot_acquire returns WB_E_NOT_FOUND, and the topic's notify fd becomes readable. A wb_snapshot_acquire
 * racing with a removal that ends refused may return WB_E_NOT_FOUND although the topic stays.
 * What this version does: the removed topic's entries in the broker's tables (topic, tensors, allocations) are
 * not reused until the broker starts afresh, so each removal uses up what the topic used of --max-topics,
 * --max-tensors and --max-allocations (and of the remover's quota, which is not given back).
 * Errors: WB_E_INVAL (NULL, or the name holds a NUL), WB_E_NAME_TOO_LONG, WB_E_NOT_FOUND (no such topic),
 * WB_E_BUSY (a publisher holds it, or a rank's, or readers hold leases on its versions: the message says which),
 * WB_E_NOMEM, WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_topic_remove(wb_client *client, const char *name);

typedef struct wb_topic_info {
  uint32_t struct_size;
  uint32_t replicas;
  char name[WB_NAME_MAX + 1];
  uint64_t latest;          /* 0 before the first publish */
  uint32_t tensor_count;    /* tensors and views (sharded: logical tensors) */
  uint32_t publisher_pid;   /* 0 when no publisher is attached; sharded: 0 (see wb_topic_rank_info) */
  uint32_t dirty;           /* 1 while acquire returns WB_E_DIRTY */
  uint32_t reserved;
  uint64_t bytes;           /* storage of all replicas */
  uint32_t ranks;           /* 0: a plain topic; N: sharded over N ranks (see "Sharded models") */
  uint32_t layout_complete; /* sharded: 1 once every rank sealed and the shards cover every tensor */
  uint64_t published_ns;    /* when version latest was published (CLOCK_REALTIME), 0 before the first */
} wb_topic_info;

#define WB_TOPIC_INFO_INIT {sizeof(wb_topic_info), 0, {0}, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Describes the topic. Errors: WB_E_INVAL. */
WB_API int wb_topic_get_info(wb_topic *topic, wb_topic_info *out);

/* Lists topics into out[0..capacity); *count receives the number that exist (which may exceed capacity, in
 * which case the first capacity are written). out may be NULL when capacity is 0. The elements are
 * out[0].struct_size bytes apart (set it; the library sets the others'). Errors: WB_E_INVAL, WB_E_BROKER_GONE. */
WB_API int wb_list_topics(wb_client *client, wb_topic_info *out, uint32_t capacity, uint32_t *count);

/* ---------------------------------------------------------------------------------------------------------- */
/* Tensors                                                                                                     */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct wb_tensor_spec {
  uint32_t struct_size;
  int32_t dtype;
  const char *name;
  uint32_t ndim; /* 0 (a scalar) .. WB_MAX_DIMS */
  uint32_t reserved;
  int64_t shape[WB_MAX_DIMS];
} wb_tensor_spec;

#define WB_TENSOR_SPEC_INIT {sizeof(wb_tensor_spec), 0, NULL, 0, 0, {0}}

/* Publisher only: allocates count contiguous host tensors in one new shared allocation, each with the topic's
 * R replicas, 64-byte aligned, zero-filled. specs is an array whose elements are specs[0].struct_size bytes
 * apart. A name that already exists with the same dtype and shape is accepted and keeps its storage (so a
 * publisher that takes over re-runs its set-up unchanged); with another dtype or shape it is WB_E_EXISTS.
 * The layout is sealed by the first publish: new tensors after it are WB_E_STATE. A sharded topic's shards are
 * wb_shard_alloc's: here they are WB_E_INVAL.
 * The call is all or nothing. Errors: WB_E_INVAL, WB_E_ROLE, WB_E_NAME_TOO_LONG, WB_E_DTYPE, WB_E_SHAPE,
 * WB_E_EXISTS, WB_E_STATE, WB_E_NOSPC, WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_tensor_alloc(wb_topic *topic, const wb_tensor_spec *specs, uint32_t count);

typedef struct wb_view_spec {
  uint32_t struct_size;
  int32_t dtype;
  const char *name;
  const char *parent;   /* a tensor or view of the same topic */
  uint64_t byte_offset; /* from the start of the parent's bytes; a multiple of the dtype's size */
  uint32_t ndim;
  uint32_t reserved;
  int64_t shape[WB_MAX_DIMS];
  int64_t strides[WB_MAX_DIMS]; /* in elements of dtype, >= 0 */
} wb_view_spec;

#define WB_VIEW_SPEC_INIT {sizeof(wb_view_spec), 0, NULL, NULL, 0, 0, 0, {0}, {0}}

/* Registers a zero-copy view. Any client that opened the topic may add views, at any time; readers see them
 * from their next lookup. Registering the same definition again is accepted.
 * A sharded topic has no views (its logical tensors have no bytes of their own): WB_E_INVAL.
 * Errors: WB_E_INVAL, WB_E_NAME_TOO_LONG, WB_E_NOT_FOUND (parent), WB_E_EXISTS (the name has another
 * definition), WB_E_DTYPE (unknown, or byte_offset not a multiple of its size), WB_E_SHAPE, WB_E_SIZE (window
 * outside the parent), WB_E_NOSPC, WB_E_BROKER_GONE. */
WB_API int wb_tensor_view(wb_topic *topic, const wb_view_spec *spec);

/* Describes a tensor or view. data is NULL in layout queries and a pointer valid in this process for the
 * snapshot's or update's lifetime otherwise. name points into the registry and lives as long as the topic
 * handle. */
typedef struct wb_tensor_info {
  uint32_t struct_size;
  uint32_t index;        /* position in the topic, 0..tensor_count-1 */
  const char *name;
  int32_t dtype;
  uint32_t ndim;
  int64_t shape[WB_MAX_DIMS];
  int64_t strides[WB_MAX_DIMS]; /* elements */
  uint64_t nbytes;       /* bytes spanned: from data to one past the last element */
  void *data;
  uint64_t version;      /* the version that last wrote these bytes (0: never written) */
  int32_t device_type;   /* WB_DEVICE_HOST or WB_DEVICE_CUDA */
  uint32_t is_view;
  uint8_t device_uuid[16]; /* GPU UUID for CUDA tensors, zero for host */
} wb_tensor_info;

#define WB_TENSOR_INFO_INIT {sizeof(wb_tensor_info), 0, NULL, 0, 0, {0}, {0}, 0, NULL, 0, 0, 0, {0}}

/* Number of tensors and views of the topic. Errors: WB_E_INVAL. */
WB_API int wb_topic_tensor_count(wb_topic *topic, uint32_t *count);

/* Layout of tensor index (data is NULL, version is the latest version that wrote it).
 * Errors: WB_E_INVAL, WB_E_NOT_FOUND (index out of range). */
WB_API int wb_topic_tensor(wb_topic *topic, uint32_t index, wb_tensor_info *out);

/* ---------------------------------------------------------------------------------------------------------- */
/* Updates (publisher)                                                                                         */
/* ---------------------------------------------------------------------------------------------------------- */

/* Starts writing version latest+1. With R = 1 this waits until no reader holds a lease, and new acquires wait
 * until the publish. With R >= 2 it waits only while readers pin more old versions than spare replicas exist
 * (R - 2 distinct versions older than the latest). One update at a time per topic. When the broker is gone it
 * first waits for a successor to take the client back (see "Broker restarts"), within the same timeout_ms.
 * A rank of a sharded topic first seals its layout (if it has not), then waits, within timeout_ms, until every
 * rank has sealed and the version it published last is committed (see "Sharded models").
 * Errors: WB_E_INVAL, WB_E_ROLE, WB_E_STATE (an update is open), WB_E_TIMEOUT (leases still block it, no
 * successor broker came yet, or, on a rank, ranks have not sealed or not published the version before: the
 * message names them; nothing changed), WB_E_LAYOUT (the rank's seal was refused), WB_E_BROKER_GONE (no
 * successor may come). */
WB_API int wb_update_begin(wb_topic *topic, int64_t timeout_ms, wb_update **out);

/* The version this update will publish. Errors: WB_E_INVAL. */
WB_API int wb_update_version(const wb_update *update, uint64_t *version);

/* Makes the update publish version instead of latest+1, e.g. to publish the version number another broker's
 * topic has (weightbus relay). Call it before the first wb_update_tensor / wb_update_tensor_at /
 * wb_update_dlpack. The numbers skipped are never published: acquiring one is WB_E_EXPIRED.
 * Errors: WB_E_INVAL (NULL, version not after the latest, over WB_VERSION_MAX), WB_E_STATE (a tensor was
 * already handed out, or a sharded topic). */
WB_API int wb_update_set_version(wb_update *update, uint64_t version);

/* Marks a tensor as changed by this update and returns where to write it (out->data; a device pointer for
 * CUDA tensors). With R >= 2 the bytes there are an older version's: write the whole tensor. Views are written
 * through their parent. On a rank of a sharded topic, name is a logical tensor and this is the rank's shard of
 * it (its first, see wb_update_shard). Errors: WB_E_INVAL, WB_E_NOT_FOUND (also: the rank holds no shard of
 * it), WB_E_STATE (a view), WB_E_STALE (revoked), and for CUDA tensors WB_E_NO_CUDA, WB_E_CUDA. */
WB_API int wb_update_tensor(wb_update *update, const char *name, wb_tensor_info *out);

/* The same by index (see wb_topic_tensor). Errors: WB_E_INVAL, WB_E_NOT_FOUND, WB_E_STATE (a view). */
WB_API int wb_update_tensor_at(wb_update *update, uint32_t index, wb_tensor_info *out);

/* Publishes the update as one version: readers see all of its tensors or none. Costs O(changed tensors).
 * metadata may be NULL when metadata_size is 0. Wakes every waiter and notify fd. Frees the update.
 * On a rank of a sharded topic it publishes the rank's part and returns; readers see the version once every
 * rank has published it (the last rank's call commits it before it returns). The version's metadata is rank 0's.
 * Errors (the update stays open; fix the call or abort): WB_E_INVAL (also: metadata from a rank other than 0),
 * WB_E_SIZE (metadata over WB_METADATA_MAX). */
WB_API int wb_update_publish(wb_update *update, const void *metadata, uint32_t metadata_size, uint64_t *version);

/* Drops the update: nothing is published. With R = 1, tensors already handed out by wb_update_tensor may have
 * been written in place, so the topic becomes dirty until they are published again. Frees the update.
 * Errors: WB_E_INVAL. */
WB_API int wb_update_abort(wb_update *update);

/* ---------------------------------------------------------------------------------------------------------- */
/* Versions (reader)                                                                                           */
/* ---------------------------------------------------------------------------------------------------------- */

/* The latest published version (0 before the first). Errors: WB_E_INVAL, WB_E_BROKER_GONE. */
WB_API int wb_topic_latest(wb_topic *topic, uint64_t *version);

/* Blocks until a version greater than after is published, and returns it (the latest, which may skip several).
 * Returns at once if one already is. Restarts after EINTR with the remaining time.
 * Errors: WB_E_INVAL, WB_E_TIMEOUT, WB_E_BROKER_GONE (no successor took the client back within its timeout_ms of
 * the broker's death, or the broker exited cleanly: this version notices within about 200 ms). */
WB_API int wb_topic_wait(wb_topic *topic, uint64_t after, int64_t timeout_ms, uint64_t *version);

/* A file descriptor for event loops (poll, epoll, select, asyncio, libuv) that becomes readable when there is
 * something to do for the topic: a version was published, the broker died, a successor broker appeared, or
 * the wait for one ended. It is one descriptor for the topic handle's whole life, broker restarts included:
 * register it once. It belongs to the handle (do not close it). It is an epoll instance, not a pipe: do not
 * read() it (that fails with EINVAL); call wb_topic_notify_ack each time it is readable. The loop:
 *
 *   int fd;
 *   uint64_t seen, latest;
 *   wb_topic_notify_fd(topic, &fd);   subscribe first,
 *   wb_topic_latest(topic, &seen);    then read the latest version: no publish falls in between
 *   for (;;) {
 *     poll(fd, POLLIN), or your loop's readable callback;
 *     if (wb_topic_notify_ack(topic, &latest) != WB_OK) break;   WB_E_BROKER_GONE: attach again
 *     if (latest > seen) { seen = latest; acquire and read version seen }
 *   }
 *
 * A wake-up need not bring a new version (a broker restart, a publish already seen): compare. While no broker
 * runs, the fd stays quiet until a successor's socket appears, the wait for one ends or the broker's segment is
 * removed. docs/examples/notify-loop.c is this loop as a program. Later calls return the same fd.
 * Errors: WB_E_INVAL, WB_E_BROKER_GONE (the broker is gone and no successor may take the client back),
 * WB_E_TIMEOUT (the broker did not answer the subscription), WB_E_NOSPC (this client holds
 * weightbusd --max-subscriptions-per-client notify fds, or the broker has no descriptor to spare: the message
 * names the flag or RLIMIT_NOFILE; closing notify fds or topic handles frees places), WB_E_IO. */
WB_API int wb_topic_notify_fd(wb_topic *topic, int *fd);

/* Call it each time the notify fd is readable: it consumes what made the fd readable, follows the broker
 * (after its death: resumes with a successor once one listens and subscribes with it; until then the fd waits
 * for the successor's socket and for the end of the wait for one), and returns the topic's latest version in
 * *latest, also while no broker runs and a successor may still come. It blocks only for an exchange with a
 * broker (at most the client's timeout_ms). Errors: WB_E_INVAL, WB_E_STATE (no notify fd yet: call
 * wb_topic_notify_fd first), WB_E_BROKER_GONE (no successor took the client back within its timeout_ms of the
 * broker's death, the broker exited cleanly, or a successor refused the client), WB_E_TIMEOUT (the broker did
 * not answer), WB_E_IO. */
WB_API int wb_topic_notify_ack(wb_topic *topic, uint64_t *latest);

/* Leases a version: 0 means the latest. While an R = 1 update is being written, acquiring the latest waits up
 * to timeout_ms for its publish. Errors: WB_E_INVAL, WB_E_NOT_FOUND (nothing published yet, or a version not
 * published yet), WB_E_EXPIRED (older than the topic keeps), WB_E_DIRTY, WB_E_TIMEOUT, WB_E_NOSPC (this
 * client's lease slots are full), WB_E_BROKER_GONE. */
WB_API int wb_snapshot_acquire(wb_topic *topic, uint64_t version, int64_t timeout_ms, wb_snapshot **out);

/* Releases the lease and frees the snapshot. Pointers obtained from it must not be used afterwards.
 * Errors: WB_E_INVAL. */
WB_API int wb_snapshot_release(wb_snapshot *snapshot);

/* The snapshot's version. Errors: WB_E_INVAL. */
WB_API int wb_snapshot_version(const wb_snapshot *snapshot, uint64_t *version);

/* The version's metadata and publish time (CLOCK_REALTIME, ns). *data stays valid until release.
 * Errors: WB_E_INVAL. */
WB_API int wb_snapshot_metadata(const wb_snapshot *snapshot, const void **data, uint32_t *size,
                                uint64_t *timestamp_ns);

/* Looks a tensor or view up by name; out->data points at its bytes as of the snapshot's version (a device
 * pointer for CUDA tensors: see "CUDA tensors"). Those bytes are read-only memory: host tensors are mapped
 * PROT_READ, so a write through out->data kills the process with SIGSEGV; CUDA mappings are writable (legacy IPC
 * has no read-only mode) and a write there changes the version under every reader: readers must not write.
 * Errors: WB_E_INVAL, WB_E_NAME_TOO_LONG, WB_E_NOT_FOUND (also: the tensor's GPU is not visible in this
 * process), WB_E_STALE (its CUDA allocation was revoked, or its legacy-IPC exporter died), WB_E_NO_CUDA,
 * WB_E_CUDA, WB_E_STATE (a sharded topic's logical tensor: use wb_snapshot_shard or a plan). */
WB_API int wb_snapshot_tensor(wb_snapshot *snapshot, const char *name, wb_tensor_info *out);

/* The same by index. Errors: WB_E_INVAL, WB_E_NOT_FOUND (index out of range), and those of wb_snapshot_tensor. */
WB_API int wb_snapshot_tensor_at(wb_snapshot *snapshot, uint32_t index, wb_tensor_info *out);

/* Every tensor and view of the snapshot in one call, in topic order: out[i] as wb_snapshot_tensor_at(i) fills
 * it, for i < *count (for a whole model's zero-copy handles at once: a binding pays one call, not one each).
 * The elements lie out[0].struct_size bytes apart: initialise out[0] with WB_TENSOR_INFO_INIT; every element's
 * struct_size is set to it. *count receives the number of tensors and views; out NULL with capacity 0 asks
 * for that alone. Errors: WB_E_INVAL (snapshot or count NULL, out NULL with a capacity, out[0].struct_size too
 * small), WB_E_SIZE (capacity below the count: nothing written, *count set), WB_E_STATE (a sharded topic: its
 * logical tensors have no one address; use wb_snapshot_shard or a plan), and those of wb_snapshot_tensor; on an
 * error the elements' contents are unspecified. */
WB_API int wb_snapshot_tensors(wb_snapshot *snapshot, wb_tensor_info *out, uint32_t capacity, uint32_t *count);

/* Where the snapshot's tensors lie, as a number, for a caller that keeps objects per tensor between versions (a
 * binding's zero-copy tensors, CUDA graphs captured on their addresses) and would otherwise call
 * wb_snapshot_tensors every version to see whether they moved: two snapshots of one topic handle whose places
 * are equal and nonzero, taken while the topic had the same tensor count, have every tensor and view (of a
 * sharded topic: every shard) at the same address; wb_plan_run relies on it too. Nonzero for an R = 1 topic:
 * its versions lie in the same memory (host memory is mapped once; CUDA memory is imported anew only after one
 * of the node's CUDA allocations changed state: registered, revoked, its exporter dead, which the place
 * counts). 0 for R >= 2, whose versions move between replicas: the library cannot tell without looking at
 * every tensor.
 * Errors: WB_E_INVAL (snapshot or place NULL). */
WB_API int wb_snapshot_place(const wb_snapshot *snapshot, uint64_t *place);

/* ---------------------------------------------------------------------------------------------------------- */
/* CUDA tensors                                                                                                */
/* ---------------------------------------------------------------------------------------------------------- */

/* Tensors may live on GPUs: allocated by the library (wb_tensor_alloc_cuda) or registered where they already
 * are (wb_tensor_register_cuda, e.g. PyTorch parameters). Readers see them through the same snapshots as host
 * tensors: wb_snapshot_tensor's data is then a device pointer valid in the reading process, device_type is
 * WB_DEVICE_CUDA and device_uuid names the GPU. GPUs are identified by UUID, never by ordinal, so processes
 * with different CUDA_VISIBLE_DEVICES agree; the GPU must be visible in every process that reads the tensor.
 *
 * Only handles move between processes: each process opens each allocation once, on first use, and keeps it
 * open for every later version (until the allocation is revoked or the client detaches); the process that
 * exported an allocation uses its own pointer. Legacy IPC handles (cuIpcGetMemHandle) share memory that stays
 * valid only while its exporting process lives; VMM handles (cuMemCreate, exported as POSIX fds that the broker
 * keeps) stay valid after the exporter is gone. CUDA mappings are read-write in every process (legacy IPC has
 * no read-only mode): readers must not write them.
 *
 * GPU ordering: a publisher that writes a version's bytes with GPU work publishes with
 * wb_update_publish_on_stream, which orders the version after its stream's work; a reader orders its own
 * stream after the version with wb_snapshot_wait_stream (no host wait), waits on the host with
 * wb_snapshot_synchronize, or copies with wb_snapshot_copy_into, which does both the wait and the copies on
 * one stream. A reader must let its GPU work that reads a snapshot finish (e.g. cuStreamSynchronize) before it
 * releases the snapshot: after the release the publisher may overwrite those bytes.
 *
 * libcuda is loaded with dlopen("libcuda.so.1") on the first CUDA call ($WEIGHTBUS_LIBCUDA names another
 * file); the library never links it. Where it is absent, or finds no GPU, every call of this section returns
 * WB_E_NO_CUDA saying why, and everything else keeps working. Streams are CUstream / cudaStream_t values
 * passed as void *; NULL is the legacy default stream of the calling thread's current context (or of the
 * tensor's GPU's primary context when the thread has none). The library retains the primary context of each
 * GPU it uses, as the CUDA runtime does. */

/* Loads libcuda and initialises the driver if that has not happened yet. Errors: WB_E_NO_CUDA (why: no
 * libcuda, no GPU, a driver too old), WB_E_CUDA. */
WB_API int wb_cuda_init(void);

/* The UUID of the GPU with this ordinal in this process. Errors: WB_E_INVAL (NULL, ordinal out of range),
 * WB_E_NO_CUDA, WB_E_CUDA. */
WB_API int wb_cuda_device_uuid(int32_t ordinal, uint8_t uuid[16]);

/* The ordinal in this process of the GPU with this UUID (e.g. a wb_tensor_info.device_uuid).
 * Errors: WB_E_INVAL, WB_E_NOT_FOUND (not visible here: see CUDA_VISIBLE_DEVICES), WB_E_NO_CUDA, WB_E_CUDA. */
WB_API int wb_cuda_device_ordinal(const uint8_t uuid[16], int32_t *ordinal);

/* Publisher only: like wb_tensor_alloc, but on the GPU with ordinal device: one new VMM allocation
 * (cuMemCreate, POSIX-fd shareable) holding the count tensors times the topic's R replicas, each tensor
 * WB_CUDA_ALIGNMENT-aligned, the size rounded up to the GPU's allocation granularity, zero-filled. Its fd goes
 * to the broker, so the memory outlives this process. Names that exist with the same dtype and shape keep
 * their storage (a publisher taking the topic over re-runs its set-up unchanged).
 * Errors: WB_E_INVAL (NULL, count 0, device out of range), WB_E_ROLE, WB_E_NAME_TOO_LONG, WB_E_DTYPE,
 * WB_E_SHAPE, WB_E_EXISTS, WB_E_STATE (sealed by the first publish), WB_E_NOSPC, WB_E_NOMEM (GPU memory),
 * WB_E_NO_CUDA, WB_E_CUDA, WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_tensor_alloc_cuda(wb_topic *topic, const wb_tensor_spec *specs, uint32_t count, int32_t device);

/* Publisher only: registers count existing, contiguous GPU tensors where they are, without copying.
 * pointers holds count * R device pointers for the topic's R replicas: pointers[r * count + i] is replica r
 * of specs[i] (R = 1: one pointer per tensor; R >= 2: one copy of the model per replica). The library finds
 * each pointer's allocation (cuMemGetAddressRange) and exports it once per process and topic however many
 * tensors it holds: cuMemAlloc memory (PyTorch's caching allocator) by the legacy IPC handle of its base,
 * VMM memory (cuMemCreate with CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR; PyTorch's expandable segments) by
 * the fds of the physical chunks the tensors span. Every replica of a tensor must be on the same GPU. The
 * memory stays the caller's: keep it allocated until wb_tensor_revoke has returned WB_OK (or the process
 * ends). Replica 0's bytes are version 0's. Registered names are new names: registering one that exists is
 * WB_E_EXISTS. Errors: WB_E_INVAL (NULL, a pointer that is not device memory, managed memory
 * (cuMemAllocManaged), memory-pool memory (cuMemAllocAsync), a tensor running past its allocation, VMM memory
 * not exportable as a POSIX fd, replicas on different GPUs), WB_E_ROLE, WB_E_NAME_TOO_LONG, WB_E_DTYPE,
 * WB_E_SHAPE, WB_E_EXISTS, WB_E_STATE (sealed), WB_E_NOSPC, WB_E_NO_CUDA, WB_E_CUDA, WB_E_BROKER_GONE,
 * WB_E_TIMEOUT. */
WB_API int wb_tensor_register_cuda(wb_topic *topic, const wb_tensor_spec *specs, void *const *pointers,
                                   uint32_t count);

/* Publisher only: revokes the CUDA allocation(s) holding tensor name's storage, and with them every tensor
 * and view stored there (a registered cuMemAlloc block may hold many tensors). From then on readers get
 * WB_E_STALE for those tensors and drop their mappings on their next call into the library for the topic
 * (acquire, lookup, copy, wait) while they hold no snapshot of it. Returns once no other process maps them,
 * which is when registered memory may be freed; allocations of wb_tensor_alloc_cuda are freed then. Revoked
 * tensors stay stale: register the new memory under new names or in a new topic.
 * When the broker is gone it waits for a successor to take the client back (see "Broker restarts").
 * Errors: WB_E_INVAL (NULL, a host tensor), WB_E_NOT_FOUND, WB_E_ROLE, WB_E_TIMEOUT (importers still map it
 * after timeout_ms: it stays revoked; call again to wait for them; or no successor broker came within it),
 * WB_E_NO_CUDA, WB_E_CUDA, WB_E_BROKER_GONE (no successor may come). */
WB_API int wb_tensor_revoke(wb_topic *topic, const char *name, int64_t timeout_ms);

/* wb_update_publish for a version whose bytes were written by GPU work on stream, so that readers order their
 * GPU work after it, without a host wait: stream writes the version into a word of the segment once its work
 * before is done (cuStreamWriteValue64, a few microseconds of the stream's time), which readers' streams wait
 * for (cuStreamWaitValue64). Where the GPU lacks 64-bit stream memory operations, or the segment's word table
 * cannot be registered with the driver, or $WEIGHTBUS_GPU_ORDER is "event", it records an interprocess event on
 * stream instead (about 150 us of the stream's time). On a rank of a sharded topic (this version) it waits on
 * the host until stream's work is done instead. Errors: those of wb_update_publish, and WB_E_INVAL (with events:
 * a stream of another CUDA context than the topic's earlier publishes on a stream), WB_E_NO_CUDA, WB_E_CUDA; on
 * an error the update stays open. The publisher's wb_detach waits (at most 10 s) until the versions it
 * published on streams are done; if its process dies first, the broker lets readers waiting for them go on. */
WB_API int wb_update_publish_on_stream(wb_update *update, void *stream, const void *metadata,
                                       uint32_t metadata_size, uint64_t *version);

/* Makes work submitted to stream after this call wait until the GPU work that wrote the snapshot's version
 * (wb_update_publish_on_stream) is done, without blocking the host. A version published with
 * wb_update_publish, whose GPU work is done already, or whose publisher's process has ended, needs no wait.
 * Waiting on a later version of the same ring slot can only make the wait longer. The host waits instead of
 * the stream (as wb_snapshot_synchronize, without a limit) when the version's publisher is this process (a
 * stream waiting on a word that another stream of the same context writes could be queued behind it), when
 * stream is NULL in a thread without a current context, and where the GPU lacks stream memory operations.
 * Errors: WB_E_INVAL, WB_E_NO_CUDA, WB_E_CUDA. */
WB_API int wb_snapshot_wait_stream(wb_snapshot *snapshot, void *stream);

/* The same, blocking the host until that GPU work is done, at most timeout_ms.
 * Errors: WB_E_INVAL, WB_E_TIMEOUT, WB_E_NO_CUDA, WB_E_CUDA. */
WB_API int wb_snapshot_synchronize(wb_snapshot *snapshot, int64_t timeout_ms);

/* Conversions. A destination of copy-into or of a plan may ask for another dtype than its source's, converted
 * on the way, in one pass over the bytes:
 *   bf16, f16 or f32 -> f8e4m3 or f8e5m2, with f32 scales written to a second buffer the caller names;
 *   f32 -> bf16 (no scales).
 * Any other pair is WB_E_DTYPE; the same dtype on both sides is a plain copy, unchanged.
 *
 * Scale layouts (scale_layout), over the destination as the reader holds it, seen as a row-major 2-D matrix
 * [R, C] (for WB_SCALE_CHANNEL, R = shape[0] and C the product of the other extents; otherwise C = the last
 * extent and R the product of the others; a 0-d tensor is [1, 1]):
 *   WB_SCALE_TENSOR   one scale for the whole destination: scale_bytes >= 4.
 *   WB_SCALE_CHANNEL  one per row (output channel): R scales (vLLM's per-channel weight_scale, [R, 1]).
 *   WB_SCALE_BLOCK    one per block_rows x block_cols block of a 2-D destination (both 0: 128 x 128, the
 *                     DeepSeek-V3 layout that vLLM and SGLang load as weight_scale_inv): ceil(R / block_rows)
 *                     x ceil(C / block_cols) scales, row-major; the blocks at the edges are the partial ones.
 * A scale is what dequantizes: value ~= fp8 * scale, the meaning of vLLM's weight_scale and of DeepSeek-V3's
 * weight_scale_inv alike (both multiply). Exactly, per group G of elements sharing a scale, in IEEE f32 with
 * round-to-nearest-even (x is the source element widened to f32, which is exact):
 *   amax  = max |x| over G; NaN if any x in G is NaN
 *   scale = amax / M, M the largest finite value of the FP8 type (448 for e4m3, 57344 for e5m2); 1.0 when
 *           amax is 0 (a group of zeros, which converts to signed zeros)
 *   q     = fp8(clamp(x / scale, -M, M)): one IEEE division, then rounded to the nearest FP8 value, ties to
 *           even, FP8 subnormals kept.
 * So a finite group never overflows. A NaN in G makes the scale NaN (0x7FFFFFFF) and every element of G
 * NaN; an infinity in G (and no NaN) makes the scale +inf, the infinities NaN and the finite elements signed
 * zeros. The FP8 NaN written is always 0x7F (e4m3fn S.1111.111 and e5m2 S.11111.11 with S = 0), the bits
 * that PyTorch's conversion gives on a GPU. f32 -> bf16 rounds to nearest even; NaN becomes 0x7FFF. A plan
 * destination's pads (wb_slice_part.pad) are written as FP8 zeros, whatever their group's scale, and count as 0
 * in its amax. tests/gpu/fp8_exact.py compares this bit for bit with PyTorch on a GPU; tests/conversions with
 * an independent reference on the host.
 *
 * A converting destination is row-major contiguous (copy-into's tensor too: no strided views), its bytes are
 * R * C times the destination dtype's size, and its scales lie where it does (host memory, or the same GPU).
 * Conversions run on the host (host sources into host memory) or in the conversion kernel on the
 * destination's GPU, reading sources on that GPU; a library built without nvcc has no kernel and refuses GPU
 * conversions with WB_E_NO_CUDA. The first GPU conversion in a process loads the kernel: at once on an A100,
 * H100 or H200 (whose machine code the library carries); on other GPUs the driver first compiles its PTX (about
 * 8 s, then cached on disk by the driver). */
#define WB_SCALE_NONE 0u
#define WB_SCALE_TENSOR 1u
#define WB_SCALE_CHANNEL 2u
#define WB_SCALE_BLOCK 3u

typedef struct wb_copy_target {
  uint32_t struct_size;
  uint32_t index;        /* the tensor's index (see wb_topic_tensor) when name is NULL */
  const char *name;      /* a tensor or view, or NULL */
  void *dst;             /* where the bytes go, in this process (may be NULL for a tensor of no elements) */
  uint64_t dst_bytes;    /* capacity of dst: at least the tensor's nbytes (converting: elements * dtype size) */
  int32_t device;        /* the CUDA ordinal of dst's GPU in this process, or -1 for host memory */
  int32_t dtype;         /* dst's dtype: 0 or the tensor's copies the bytes; another converts (Conversions) */
  uint32_t scale_layout; /* WB_SCALE_*: NONE unless dtype is an FP8 type */
  uint32_t block_rows;   /* WB_SCALE_BLOCK's block; 0 and 0: 128 x 128 */
  uint32_t block_cols;
  uint32_t reserved;
  void *scale;           /* the f32 scales, where dst is; NULL for WB_SCALE_NONE */
  uint64_t scale_bytes;  /* capacity of scale */
} wb_copy_target;

#define WB_COPY_TARGET_INIT {sizeof(wb_copy_target), 0, NULL, NULL, 0, -1, 0, 0, 0, 0, 0, NULL, 0}

/* Copies count tensors of the snapshot into the caller's buffers, in one batch on stream, ordered after the GPU
 * work that wrote the version (as wb_snapshot_wait_stream orders it): from a GPU to any GPU, peers included, or
 * to host memory. A view's nbytes are copied from its first element, strides kept. Host tensors into host
 * memory are copied before the call returns and need no CUDA. The copies read the snapshot: synchronize stream
 * before releasing it. Targets are checked before anything is copied. Errors: WB_E_INVAL (NULL, a bad
 * struct_size, device out of range), WB_E_NAME_TOO_LONG, WB_E_NOT_FOUND, WB_E_SIZE (dst_bytes below the
 * tensor's nbytes, scale_bytes below its scales'), WB_E_STATE (a sharded topic's logical tensor: use a plan),
 * WB_E_DTYPE (a pair that is not one of Conversions', a scale layout that does not fit the pair), WB_E_SHAPE
 * (a strided view converted, WB_SCALE_BLOCK on a tensor that is not 2-D), WB_E_STALE, WB_E_NO_CUDA (also: a
 * GPU conversion without the kernel, or of a tensor that is not on dst's GPU), WB_E_CUDA, WB_E_INVAL also for
 * converting targets of one call on two GPUs; the message names the target (targets[i]).
 * This version (how, not a promise: the numbers may change): the stream first waits for the version's GPU work
 * (wb_snapshot_wait_stream); copies below 16 MiB between device memory of the stream's GPU run in a few
 * launches of a copy kernel (the first after 128 copies, so that the GPU starts early; up to 1,364 copies a
 * launch), the rest as one cuMemcpyAsync each; host tensors into host memory with memcpy. Passing the same
 * names every version is cheap: each is first compared with the tensor that the topic's previous copy-into
 * found for the target at the same index. */
WB_API int wb_snapshot_copy_into(wb_snapshot *snapshot, const wb_copy_target *targets, uint32_t count,
                                 void *stream);

/* ---------------------------------------------------------------------------------------------------------- */
/* DLPack                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

/* Tensors leave the library as DLPack structs, so that NumPy, PyTorch, CuPy, JAX and others wrap them without
 * copying: DLManagedTensor (dlpack.h, any version from 0.6: the struct is the same) or DLPack 1.x's
 * DLManagedTensorVersioned, which adds a version and flags (<weightbus/dlpack_versioned.h> declares it where
 * the installed dlpack.h is older than 1.0). dtypes map to DLPack's codes of DLPack 1.1: bool -> kDLBool (6),
 * bf16 -> kDLBfloat (4), f8e4m3 -> kDLFloat8_e4m3fn (10), f8e5m2 -> kDLFloat8_e5m2 (12), the others to
 * kDLInt/kDLUInt/kDLFloat. Host tensors have device kDLCPU, CUDA tensors kDLCUDA with the GPU's ordinal in this
 * process. Shape and strides (in elements) are the tensor's; byte_offset is 0. The consumer calls the tensor's
 * deleter exactly once, from any thread.
 *
 * A snapshot's bytes are read-only (see wb_snapshot_tensor). Versioned exports of a snapshot say so with
 * DLPACK_FLAG_BITMASK_READ_ONLY, which a consumer may honour by refusing writes (NumPy 2.1 and later make such
 * arrays read-only); the legacy DLManagedTensor has no way to say it. Versioned exports of an update have no
 * flag set. Versioned exports have version {1, 1}. */
struct DLManagedTensor;
struct DLManagedTensorVersioned;

/* Exports tensor or view name of the snapshot. The export holds the snapshot's lease: the version stays
 * leased until both wb_snapshot_release and every export's deleter have been called, in any order, and until
 * then the topic counts the snapshot as held (wb_topic_close returns WB_E_STATE). The deleter does not wait
 * for GPU work: make the consumer's stream wait first (wb_snapshot_wait_stream). wb_detach drops the lease
 * even while exports live; their data is then invalid, but their deleters stay safe to call (not while
 * wb_detach runs). Errors: WB_E_INVAL (NULL), WB_E_NOMEM, and those of wb_snapshot_tensor. */
WB_API int wb_snapshot_dlpack(wb_snapshot *snapshot, const char *name, struct DLManagedTensor **out);

/* wb_snapshot_dlpack as a DLPack 1.x versioned struct, flagged DLPACK_FLAG_BITMASK_READ_ONLY; the same lease
 * rules. Errors: WB_E_INVAL (NULL), WB_E_NOMEM, and those of wb_snapshot_tensor. */
WB_API int wb_snapshot_dlpack_versioned(wb_snapshot *snapshot, const char *name,
                                        struct DLManagedTensorVersioned **out);

/* Publisher: exports tensor name of the update for writing, marking it changed as wb_update_tensor does. Its
 * data is valid until the update is published or aborted; the deleter only frees the struct.
 * Errors: WB_E_INVAL (NULL), WB_E_NOMEM, and those of wb_update_tensor. */
WB_API int wb_update_dlpack(wb_update *update, const char *name, struct DLManagedTensor **out);

/* wb_update_dlpack as a DLPack 1.x versioned struct, with no flag set (the data is for writing).
 * Errors: WB_E_INVAL (NULL), WB_E_NOMEM, and those of wb_update_tensor. */
WB_API int wb_update_dlpack_versioned(wb_update *update, const char *name, struct DLManagedTensorVersioned **out);

/* ---------------------------------------------------------------------------------------------------------- */
/* Sharded models                                                                                              */
/* ---------------------------------------------------------------------------------------------------------- */

/* A sharded topic is one model published by N processes, its ranks 0..N-1 (an FSDP or tensor-parallel trainer),
 * and read by processes that each copy the slice they need (the ranks of a tensor-parallel server). Each rank
 * stores shards: the part of a logical tensor (the whole tensor as the model defines it) it holds, given as a
 * box: per dimension an offset and an extent into the logical shape, or the whole tensor, replicated.
 * docs/sharded-models.md has the concepts and worked examples (FSDP -> vLLM TP, Megatron TP4 -> TP2).
 *
 * The topic lists logical tensors: wb_topic_tensor_count, wb_topic_tensor and listings show each once, with
 * its logical shape. Its shards are not listed; wb_snapshot_shard reaches one, a plan (wb_plan_create) copies
 * any region of any logical tensor.
 *
 * Versions: there is one version sequence for the whole model. Every rank begins and publishes each version
 * (wb_update_begin, wb_update_tensor for its shards, wb_update_publish); the version becomes visible to
 * readers only when every rank has published it, all at once: a reader never sees rank 0's version v beside
 * rank 1's v-1. The last rank's publish commits it, in that call (also while no broker runs); if that rank's
 * process dies between its part and the commit, the broker commits it (a successor, when it adopts the segment,
 * if none ran). Each version commits once, whoever gets there. A rank begins version
 * v+1 only once v is committed. With R = 1 the ranks write in place, so acquires of the latest wait from the
 * first rank's begin of a version until it is committed. One lease pins version v of every shard. A rank killed mid-version leaves the
 * last committed version readable (R >= 2) or, with R = 1, the model dirty (WB_E_DIRTY) until its shards are
 * published again; a process that creates the same rank takes it over. A rank that never publishes makes
 * readers' waits and the other ranks' next begin time out, naming the rank that lags.
 *
 * Layout: every rank registers its shards (wb_shard_alloc, wb_shard_alloc_cuda, wb_shard_register_cuda)
 * before its first begin, which seals its rank (or wb_topic_seal_rank). Shards that overlap (except replicated
 * ones of the same box) or disagree on dtype or logical shape are refused when registered; a logical tensor
 * that the shards leave partly uncovered is refused when the last rank seals: WB_E_LAYOUT, naming the tensor,
 * the ranks and the region (numpy notation, half-open: [0:1024, 2048:4096]). Versions start once every rank
 * has sealed.
 *
 * GPU work: a rank that writes its shards with GPU work publishes with wb_update_publish_on_stream, which on
 * a sharded topic (this version) waits on the host for the stream's work before the rank's part counts as
 * published; readers order their copies after the commit. wb_update_set_version is WB_E_STATE on a sharded
 * topic, wb_topic_create of a sharded topic's name WB_E_INVAL. */

typedef struct wb_rank_options {
  uint32_t struct_size;
  uint32_t replicas; /* 1..WB_MAX_REPLICAS, the same for every rank */
  uint32_t rank;     /* 0..ranks-1 */
  uint32_t ranks;    /* 1..WB_MAX_RANKS, the same for every rank */
} wb_rank_options;

#define WB_RANK_OPTIONS_INIT {sizeof(wb_rank_options), 2, 0, 1}

/* Creates sharded topic name, or joins it, as rank opts->rank of opts->ranks, and becomes that rank's
 * publisher. If the rank's publisher is gone (it died or closed the topic), this takes the rank over: its
 * shards and the model's versions stay; register the same shards again (accepted unchanged).
 * Errors: WB_E_INVAL (NULL, replicas, rank or ranks out of range, or ranks/replicas not the existing topic's;
 * a plain topic of that name), WB_E_NAME_TOO_LONG, WB_E_BUSY (a live publisher holds the rank, or this client
 * holds another rank of the topic: one rank per wb_client), WB_E_NOSPC
 * (topic or rank table full: weightbusd --max-topics, --max-ranks), WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_topic_create_rank(wb_client *client, const char *name, const wb_rank_options *opts,
                                wb_topic **out);

#define WB_SHARD_REPLICATED 1u /* wb_shard_spec.flags: every rank holding this box holds the same bytes */

typedef struct wb_shard_spec {
  uint32_t struct_size;
  int32_t dtype;
  const char *name;                     /* the logical tensor's name */
  uint32_t ndim;                        /* 0 (a scalar) .. WB_MAX_DIMS */
  uint32_t flags;                       /* 0 or WB_SHARD_REPLICATED */
  int64_t logical_shape[WB_MAX_DIMS];   /* the whole tensor's shape, the same on every rank */
  int64_t offset[WB_MAX_DIMS];          /* where this shard starts in it */
  int64_t extent[WB_MAX_DIMS];          /* this shard's shape; 0 in a dimension: an empty shard, allowed */
} wb_shard_spec;

#define WB_SHARD_SPEC_INIT {sizeof(wb_shard_spec), 0, NULL, 0, 0, {0}, {0}, {0}}

/* Rank publisher only: like wb_tensor_alloc, host shards of this rank, each its extent's shape, contiguous.
 * A rank holding two boxes of one logical tensor registers both (wb_update_shard tells them apart by order).
 * Registering the same box again is accepted and keeps the storage. Errors: those of wb_tensor_alloc, and
 * WB_E_SHAPE (a box outside its logical shape, naming it), WB_E_LAYOUT (overlap with another rank's shard, or
 * another dtype or logical shape than another rank's: the message names the tensor, both ranks and the
 * region), WB_E_STATE (the layout is complete: every rank sealed). */
WB_API int wb_shard_alloc(wb_topic *topic, const wb_shard_spec *specs, uint32_t count);

/* The same on the GPU with ordinal device, like wb_tensor_alloc_cuda (VMM memory that outlives this process,
 * the kind to use for shards that must survive a rank's restart). Errors: those of wb_shard_alloc and of
 * wb_tensor_alloc_cuda. */
WB_API int wb_shard_alloc_cuda(wb_topic *topic, const wb_shard_spec *specs, uint32_t count, int32_t device);

/* The same for existing contiguous GPU tensors, like wb_tensor_register_cuda: pointers[r * count + i] is
 * replica r of specs[i]. Errors: those of wb_shard_alloc and of wb_tensor_register_cuda. */
WB_API int wb_shard_register_cuda(wb_topic *topic, const wb_shard_spec *specs, void *const *pointers,
                                  uint32_t count);

/* Seals this rank's layout: it registers no more shards. The first wb_update_begin does it too. When the last
 * rank seals, the broker checks that the shards cover every logical tensor; the layout is then complete and
 * versions may start. Sealing again is accepted. Errors: WB_E_INVAL, WB_E_ROLE (not a rank's publisher),
 * WB_E_LAYOUT (the seal that would complete the layout finds a region no rank covers; this rank stays
 * unsealed: register what is missing and seal again), WB_E_BROKER_GONE, WB_E_TIMEOUT. */
WB_API int wb_topic_seal_rank(wb_topic *topic, int64_t timeout_ms);

typedef struct wb_rank_info {
  uint32_t struct_size;
  uint32_t rank;
  uint32_t pid;          /* its publisher's process, 0 when none is attached */
  uint32_t sealed;       /* 1 once it sealed its layout */
  uint32_t shards;       /* shards it registered */
  uint32_t dirty;        /* R = 1: its shards left half-written by a death or an abort */
  uint64_t published;    /* the last version it published (0: none); above the topic's latest while the others
                            have not published that version yet */
  uint64_t writing;      /* the version it is writing, 0 when none */
  uint64_t published_ns; /* when it last published (CLOCK_REALTIME), 0: never */
  uint64_t begin_ns;     /* when it last began a version (CLOCK_REALTIME), 0: never */
  uint64_t bytes;        /* storage of its shards, all replicas */
} wb_rank_info;

#define WB_RANK_INFO_INIT {sizeof(wb_rank_info), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Describes rank `rank` of a sharded topic (any handle of it: readers too). Errors: WB_E_INVAL (NULL, a plain
 * topic, rank out of range). */
WB_API int wb_topic_rank_info(wb_topic *topic, uint32_t rank, wb_rank_info *out);

/* Shard number `index` (in its rank's registration order, from 0) of rank `rank` of logical tensor name, as
 * its rank registered it: where it lies in the logical tensor (offset, extent), flags, dtype and logical shape;
 * out->name points into the topic's registry, valid while the topic handle is open. A shard's box never
 * changes once registered, so this needs no snapshot (any handle: readers too). Errors: WB_E_INVAL (NULL, a bad
 * struct_size, a plain topic), WB_E_NOT_FOUND (no such tensor, or the rank holds no such shard of it). */
WB_API int wb_topic_shard(wb_topic *topic, const char *name, uint32_t rank, uint32_t index, wb_shard_spec *out);

/* Publisher of a rank: this rank's shard number `index` (in its registration order, from 0) of logical tensor
 * name, marked changed, as wb_update_tensor does for a rank's only shard of a name. Errors: those of
 * wb_update_tensor, and WB_E_NOT_FOUND (this rank has no such shard). */
WB_API int wb_update_shard(wb_update *update, const char *name, uint32_t index, wb_tensor_info *out);

/* Reader: shard number `index` of rank `rank` of logical tensor name, as of the snapshot's version (out->shape
 * is the shard's extent). wb_snapshot_tensor on a sharded topic's logical tensor is WB_E_STATE: use this or a
 * plan. Errors: those of wb_snapshot_tensor, WB_E_INVAL (a plain topic). */
WB_API int wb_snapshot_shard(wb_snapshot *snapshot, const char *name, uint32_t rank, uint32_t index,
                             wb_tensor_info *out);

/* A reader's slice: what it wants of one logical tensor, a box. */
typedef struct wb_slice_part {
  uint32_t struct_size;
  uint32_t ndim;                  /* the logical tensor's */
  const char *name;               /* a logical tensor (or a plain topic's tensor) */
  int64_t offset[WB_MAX_DIMS];    /* the box, in the logical tensor */
  int64_t extent[WB_MAX_DIMS];
  int64_t pad;                    /* elements along the destination's concat_dim after the box that the plan
                                     fills with zeros (vLLM's vocabulary padding); usually 0 */
} wb_slice_part;

#define WB_SLICE_PART_INIT {sizeof(wb_slice_part), 0, NULL, {0}, {0}, 0}

/* A reader's buffer: parts[first_part .. first_part+part_count) concatenated along concat_dim, in order
 * (vLLM's fused QKV is q, k and v along dimension 0). Its shape is theirs, pads included. */
typedef struct wb_slice_dest {
  uint32_t struct_size;
  int32_t device;                 /* CUDA ordinal of dst's GPU in this process, or -1 for host memory */
  uint32_t first_part;
  uint32_t part_count;            /* 1.. */
  uint32_t concat_dim;
  uint32_t ndim;
  int64_t shape[WB_MAX_DIMS];
  int64_t strides[WB_MAX_DIMS];   /* in elements; all 0: contiguous. The last dimension's must be 1 */
  int32_t dtype;                  /* dst's: the logical tensors' own, or a conversion's (see Conversions) */
  uint32_t scale_layout;          /* WB_SCALE_*: NONE unless dtype is an FP8 type */
  void *dst;                      /* may be NULL for a shape of no elements */
  uint64_t dst_bytes;             /* capacity of dst */
  uint32_t block_rows;            /* WB_SCALE_BLOCK's block; 0 and 0: 128 x 128 */
  uint32_t block_cols;
  void *scale;                    /* the f32 scales of the destination as the reader holds it, where dst is */
  uint64_t scale_bytes;           /* capacity of scale */
} wb_slice_dest;

#define WB_SLICE_DEST_INIT {sizeof(wb_slice_dest), -1, 0, 1, 0, 0, {0}, {0}, 0, 0, NULL, 0, 0, 0, NULL, 0}

typedef struct wb_plan wb_plan; /* destinations resolved into copies, run every version */

/* Resolves count destinations into region copies from the topic's shards, once: every destination is checked
 * here, against the complete layout, and nothing is checked again per version. Works on plain topics too
 * (each tensor is one shard of itself). Arrays are read with their first element's struct_size as stride.
 * Errors (the message names dests[i] and parts[j] with its tensor): WB_E_INVAL (NULL, a bad struct_size, a part
 * index out of range, device out of range), WB_E_NOT_FOUND (no such tensor), WB_E_STATE (the layout is not
 * complete yet: the message names the ranks that have not sealed), WB_E_DTYPE (parts of different dtypes, a
 * dest dtype that is neither theirs nor one of Conversions' from it, a scale layout that does not fit the
 * pair), WB_E_SHAPE (a box outside its tensor, parts that differ off concat_dim, a shape that is not the
 * parts' concatenation, concat_dim >= ndim, a negative pad, strides not > 0 or a last stride other than 1;
 * converting: strides that are not contiguous, WB_SCALE_BLOCK on a dest that is not 2-D), WB_E_SIZE
 * (dst_bytes too small for shape and strides, scale_bytes for the scales), WB_E_NO_CUDA (a CUDA destination
 * without CUDA; converting: a CUDA destination without the kernel, a part whose shards are not all on its GPU,
 * a host destination of GPU shards), WB_E_NOMEM. A converting destination's scales are computed over the
 * destination as the reader holds it: where shard and part boundaries fall on multiples of the block, these
 * are the slice of the scales computed over the whole logical tensor. */
WB_API int wb_plan_create(wb_topic *topic, const wb_slice_dest *dests, uint32_t count,
                          const wb_slice_part *parts, uint32_t part_count, wb_plan **out);

/* Runs the plan for the snapshot's version: host destinations of host shards are filled before it returns
 * (memcpy); copies with a GPU on either side run on stream (NULL: see "CUDA tensors"), ordered after every
 * rank's GPU work for the version, from any GPU of the node. The copies between memory of the stream's GPU
 * run in a few launches of one kernel, made on the plan's first run in that GPU's context (its descriptors
 * are uploaded once and freed by wb_plan_destroy); peer and host copies are one driver copy each.
 * Synchronize stream before releasing the snapshot. One thread at a time runs a plan (different plans, also
 * of one topic, run concurrently). Errors: WB_E_INVAL (NULL, a snapshot of another topic), WB_E_STALE,
 * WB_E_NO_CUDA, WB_E_CUDA, WB_E_NOMEM (the descriptors' device memory, on a first run); after an error some
 * destinations may hold this version's bytes and others not. */
WB_API int wb_plan_run(wb_plan *plan, wb_snapshot *snapshot, void *stream);

typedef struct wb_plan_info {
  uint32_t struct_size;
  uint32_t dests;
  uint32_t copies;     /* region copies per run */
  uint32_t copies_2d;  /* of which strided (rows of a pitch) */
  uint64_t bytes;      /* copied per run (a converting destination: the bytes it writes, scales aside) */
  uint64_t pad_bytes;  /* zero-filled per run */
  /* How its arms went, since the plan was made (wb_plan_arm, "GPU arms" below): */
  uint64_t arms;              /* arms made */
  uint64_t gpu_arms;          /* of which GPU arms: the copies enqueued at the arm */
  uint64_t gpu_arms_claimed;  /* of which a wait found copied by the GPU, let go by the version's publisher (the
                               * others were withdrawn: the version went by, the hold ran out, a release) */
} wb_plan_info;

#define WB_PLAN_INFO_INIT {sizeof(wb_plan_info), 0, 0, 0, 0, 0, 0, 0, 0}

/* Describes the plan, and how its arms went. Errors: WB_E_INVAL. */
WB_API int wb_plan_get_info(const wb_plan *plan, wb_plan_info *out);

/* Frees the plan (NULL is accepted). The topic handle must outlive it. */
WB_API void wb_plan_destroy(wb_plan *plan);

/* Arms: a server's loop leases the version it will load next before that version exists.
 *
 *   uint64_t seen = 0;
 *   for (;;) {
 *     wb_armed *armed;  wb_snapshot *s;
 *     wb_plan_arm(plan, seen, stream, &armed);            // before the trainer publishes
 *     if (wb_armed_wait(armed, -1, &s) != WB_OK) ...;      // published: the copies are on stream
 *     cudaStreamSynchronize(stream); wb_snapshot_version(s, &seen); wb_snapshot_release(s);
 *   }
 *
 * While the version is not published, its lease keeps nothing waiting: an R = 1 publisher writes it in place
 * all the same (a begin waits only for leases of published versions), and the reader reads nothing of it until
 * it is published; from then on the lease pins it as any. The arm's copies run once the version is published.
 *
 * GPU arms (opt-in: $WEIGHTBUS_GPU_ARMS=on, or a hold in milliseconds, 1 to 3600000; on is 100; unset or off:
 * none; any other value makes wb_plan_arm fail with WB_E_INVAL). Then, where it can, wb_plan_arm also enqueues the
 * copies on the arm's stream at once, behind a wait on a word of the arm (cuStreamWaitValue64), and the publisher
 * of the version lets them go: from its stream once the version's GPU work is done (published on a stream), at
 * once (published from the host), or, for a sharded version, when its last rank commits it. So the GPU copies
 * the version the moment it is published, before the reader's thread is even woken. A version that does not come
 * (the arm released, a version skipped, an error) lets the wait pass with the copies skipped: the destinations
 * keep what they held.
 * Until then THE STREAM IS HELD: work enqueued on it after wb_plan_arm runs after the version's copies. And while
 * it is held, whatever in the process waits for the whole device waits for it too: cuCtxSynchronize and
 * cudaDeviceSynchronize (torch.cuda.synchronize), cudaFree, and a kernel's first launch under CUDA's lazy module
 * loading (CUDA_MODULE_LOADING=LAZY, the default since CUDA 12.2) may; and where CUDA runs more streams of the
 * process than it has hardware queues (CUDA_DEVICE_MAX_CONNECTIONS, 8 by default; 1, as Megatron sets it,
 * serializes every stream), a stream sharing the held one's queue may wait behind it, as behind any
 * cuStreamWaitValue64. So the hold is bounded: wb_armed_wait withdraws a GPU arm whose version has not come
 * within the hold of wb_plan_arm (its stream goes on, the copies skipped) and makes the copies itself once the
 * version is published, as without it. The bound is kept by wb_armed_wait: call it at once after wb_plan_arm, on
 * the same thread, which must not wait for the device in between (it could not end the hold). Hence opt-in: turn
 * GPU arms on where the process's other GPU work can wait up to the hold once per version (a server between
 * batches) or has queues of its own. And where the publisher's process shares the reader's GPU (two contexts the
 * GPU switches between), an arm pays for that switch: it shortens bulk loads (1,000 tensors of 2 MiB on an H100:
 * 1.14-1.22x one contiguous copy, against 1.25-1.34x without), not the latency of small versions (publish -> on
 * the reader's GPU: 290 us armed; 22-40 us for a woken reader, 0.85-1.30x a bare futex wake sent once the
 * publisher's stream is done; 28 us armed where both processes run under MPS, which shares one context between
 * them; docs/benchmarks.md).
 * A GPU arm is made only on a stream created non-blocking (CU_STREAM_NON_BLOCKING, as PyTorch's streams are;
 * never the legacy default stream), for a plan that ran once already in the stream's context, whose copies all
 * go to GPU memory from sources the plan kernel reaches (no host or peer copies, no conversions), of a topic of
 * 1 or 2 replicas whose allocations are as at that run and, unless sharded, published by another process, where
 * stream memory operations are available and one of the topic's 8 arm slots is free. Otherwise the copies are
 * made by wb_armed_wait once the version is published (wb_armed_on_stream says which; a hold that runs out turns
 * it to 0). Either way the result is the same. wb_plan_info counts how a plan's arms went.
 *
 * An arm counts as a snapshot of its topic: wb_topic_close refuses while one is held, wb_detach withdraws and
 * frees it. One thread at a time uses an arm; the plan and the topic handle must outlive it. */
typedef struct wb_armed wb_armed;

/* Arms the plan for the first version after `after` (the last one the caller loaded; 0: any): when the latest is
 * newer and can be leased now, that one (wb_armed_wait copies it at once), else the version after the latest,
 * leased before it is published (an R = 1 update may be writing it, or its topic is left dirty: the arm waits for
 * the version that mends it). stream is where wb_armed_wait's copies go (wb_plan_run's). Errors: WB_E_INVAL (NULL;
 * after beyond the latest, or the latest WB_VERSION_MAX: no version can follow; $WEIGHTBUS_GPU_ARMS not on, off
 * or a hold in milliseconds), WB_E_NOT_FOUND (the topic was removed), WB_E_NOSPC (every lease slot of the client
 * is held), WB_E_NOMEM. */
WB_API int wb_plan_arm(wb_plan *plan, uint64_t after, void *stream, wb_armed **out);

/* Waits up to timeout_ms (-1: forever, 0: a look) until the armed version is published, runs the plan for it on
 * the arm's stream (wb_plan_run; a GPU arm's copies are there already, unless its hold ran out first) and gives
 * its snapshot: release it as any, after its stream's copies. A version
 * that will not come (the publisher went past it with wb_update_set_version, or a reader of R >= 2 fell so far
 * behind that its record is gone) moves the arm to the first version after `after` that can be had, within the
 * same wait. On WB_E_TIMEOUT the arm stays (wait again, or release it); on any other return it is spent and freed.
 * Errors: WB_E_INVAL (NULL), WB_E_TIMEOUT (the message names what the topic waits for), WB_E_DIRTY (the version
 * was published but the topic is still left half-written by a publisher that died: wb_snapshot_acquire's),
 * WB_E_NOT_FOUND (the topic was removed), WB_E_BROKER_GONE, and wb_plan_run's (its snapshot released:
 * some destinations may hold the version's bytes). */
WB_API int wb_armed_wait(wb_armed *armed, int64_t timeout_ms, wb_snapshot **snapshot);

/* The version armed now (it may move in wb_armed_wait: see there). Errors: WB_E_INVAL (NULL). */
WB_API int wb_armed_version(const wb_armed *armed, uint64_t *version);

/* *on_stream = 1 when the arm is a GPU arm (see above: its copies are enqueued on its stream, which is held until
 * the version comes, the arm is withdrawn or its hold runs out), else 0 (wb_armed_wait will run them). Errors:
 * WB_E_INVAL (NULL). */
WB_API int wb_armed_on_stream(const wb_armed *armed, int *on_stream);

/* Withdraws an arm that was not waited for, or timed out: drops its lease, nothing is copied (NULL is
 * accepted). A GPU arm's stream goes on with its copies skipped; if the version was published just before, its
 * copies were let go already, and the call waits until they are done (the lease must hold until then). */
WB_API int wb_armed_release(wb_armed *armed);

/* How sizes split over ranks, the formulas of the frameworks (pure helpers, no broker).
 * WB_SPLIT_EVEN: size % ranks must be 0 (vLLM's and Megatron's tensor parallelism), else WB_E_SHAPE.
 * WB_SPLIT_CHUNK: torch.chunk / DTensor Shard(d): chunks of ceil(size / ranks), the last ones short or empty. */
#define WB_SPLIT_EVEN 0u
#define WB_SPLIT_CHUNK 1u

/* Rank `rank` of `ranks`'s part of a dimension of `size`: *offset and *extent.
 * Errors: WB_E_INVAL (NULL, rank >= ranks, ranks 0, size < 0, unknown mode), WB_E_SHAPE (EVEN, not divisible). */
WB_API int wb_split(int64_t size, uint32_t rank, uint32_t ranks, uint32_t mode, int64_t *offset,
                    int64_t *extent);

/* vLLM's VocabParallelEmbedding / ParallelLMHead: the vocabulary padded to a multiple of pad_to (64 in vLLM),
 * split evenly: rank `rank` holds padded rows [rank*P, (rank+1)*P), of which the real rows are
 * [*offset, *offset + *extent) and the rest zero padding (*padded_extent = P). Errors: WB_E_INVAL (NULL,
 * rank >= ranks, vocab <= 0, pad_to <= 0), WB_E_SHAPE (the padded vocabulary does not divide by ranks). */
WB_API int wb_split_vocab(int64_t vocab, int64_t pad_to, uint32_t rank, uint32_t ranks, int64_t *offset,
                          int64_t *extent, int64_t *padded_extent);

/* vLLM's QKVParallelLinear for rank `rank` of `ranks`: the three parts of its fused [q; k; v] weight (2-D
 * [rows, hidden]) from logical tensors q ([heads*head_dim, hidden]), k and v ([kv_heads*head_dim, hidden]):
 * heads/ranks query heads, and kv_heads/ranks KV heads, or, when ranks >= kv_heads, KV head rank /
 * (ranks / kv_heads) (replicated). Fills out[0..2] (struct_size set by the call); names are kept as pointers.
 * Errors: WB_E_INVAL (NULL, rank >= ranks, a count <= 0), WB_E_SHAPE (heads % ranks, or kv_heads % ranks when
 * ranks < kv_heads, or ranks % kv_heads otherwise, not 0: the message names the counts). */
WB_API int wb_parts_qkv(const char *q, const char *k, const char *v, int64_t heads, int64_t kv_heads,
                        int64_t head_dim, int64_t hidden, uint32_t rank, uint32_t ranks, wb_slice_part out[3]);

/* vLLM's MergedColumnParallelLinear (gate_up): part i is rows [rank*rows[i]/ranks, (rank+1)*rows[i]/ranks) of
 * 2-D logical tensor names[i] ([rows[i], cols]), for i < n, concatenated along dimension 0. Fills out[0..n).
 * Errors: WB_E_INVAL (NULL, n 0, rank >= ranks), WB_E_SHAPE (rows[i] % ranks != 0). */
WB_API int wb_parts_merged(const char *const *names, const int64_t *rows, uint32_t n, int64_t cols,
                           uint32_t rank, uint32_t ranks, wb_slice_part *out);

/* ---------------------------------------------------------------------------------------------------------- */
/* Clients                                                                                                     */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct wb_client_info {
  uint32_t struct_size;
  uint32_t id;
  uint32_t pid;
  uint32_t topics_published; /* topics (and ranks of sharded topics) this client is the publisher of */
  uint32_t leases;           /* leases held now */
  uint32_t reserved;
  char name[32];
} wb_client_info;

#define WB_CLIENT_INFO_INIT {sizeof(wb_client_info), 0, 0, 0, 0, 0, {0}}

/* Lists attached clients like wb_list_topics. Errors: WB_E_INVAL, WB_E_BROKER_GONE. */
WB_API int wb_list_clients(wb_client *client, wb_client_info *out, uint32_t capacity, uint32_t *count);

/* A lease held by an attached client: who holds which version of which topic, how far behind the topic's latest
 * version it is and for how long it has been held. */
typedef struct wb_lease_info {
  uint32_t struct_size;
  uint32_t client_id;    /* the holder's slot, as wb_client_info.id */
  uint32_t pid;          /* the holder's process */
  uint32_t reserved;
  char topic[WB_NAME_MAX + 1];
  uint64_t version;      /* the leased version */
  uint64_t latest;       /* the topic's latest version when listed: the lag is latest - version */
  uint64_t held_ns;      /* time since the lease was acquired (CLOCK_MONOTONIC) */
} wb_lease_info;

#define WB_LEASE_INFO_INIT {sizeof(wb_lease_info), 0, 0, 0, {0}, 0, 0, 0}

/* Lists the leases held now by every attached client, like wb_list_topics: *count receives how many are held
 * (which may exceed capacity), the first capacity are written. The list is a moment's picture read without
 * locks: a lease released or acquired while it is read may be missed or included. Each out[i].struct_size
 * must be set. Errors: WB_E_INVAL (NULL, a bad struct_size), WB_E_BROKER_GONE. */
WB_API int wb_list_leases(wb_client *client, wb_lease_info *out, uint32_t capacity, uint32_t *count);

/* ---------------------------------------------------------------------------------------------------------- */
/* Broker                                                                                                      */
/* ---------------------------------------------------------------------------------------------------------- */

/* The broker a client is attached to: who it is, its limits (weightbusd's flags) with what is used of each, and
 * its counters. Counters count since the segment was made: a broker that adopts its dead predecessor's segment
 * goes on counting, a broker that makes a new segment starts at 0. `weightbus stats` shows it all, and
 * `weightbus stats --prometheus` and weightbusd --metrics expose it (docs/operations.md). */
typedef struct wb_broker_info {
  uint32_t struct_size;
  uint32_t pid;                  /* the broker's process */
  uint32_t version;              /* the broker's WB_VERSION, e.g. 100 for 0.1.0 */
  uint32_t reserved;
  char name[WB_NAME_MAX + 1];    /* its --name */
  char segment[WB_NAME_MAX + 1]; /* its shared-memory segment, "/weightbus-<uid>-<name>" */
  uint64_t started_ns;           /* when this broker started serving the segment (CLOCK_REALTIME) */
  uint64_t created_ns;           /* when the segment was made: before started_ns after an adoption */
  /* Entries used and the limit of each table. A removed topic's entries stay used (see wb_topic_remove). */
  uint32_t topics;
  uint32_t max_topics;
  uint32_t tensors;              /* tensors, views and shards */
  uint32_t max_tensors;
  uint32_t allocations;
  uint32_t max_allocations;
  uint32_t clients;              /* attached now, this one included */
  uint32_t max_clients;
  uint32_t ranks;                /* Rank entries, over all sharded topics */
  uint32_t max_ranks;
  uint32_t leases_per_client;
  uint32_t ring_slots;           /* version records kept per topic */
  /* Counters. */
  uint64_t publishes;            /* versions published, over every topic */
  uint64_t reclaims;             /* clients whose slot the broker freed: each detach, exit and death */
  uint64_t reclaimed_leases;     /* leases that clients still held as they went: a reader that died, or
                                    exited without releasing */
  uint64_t adoptions;            /* brokers that adopted the segment their predecessor left (a crash, a kill,
                                    a stop that kept it) */
} wb_broker_info;

#define WB_BROKER_INFO_INIT {sizeof(wb_broker_info), 0, 0, 0, {0}, {0}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

/* Describes the broker the client is attached to, from the segment's header (no request: cheap enough to poll).
 * Errors: WB_E_INVAL (client or out NULL, out->struct_size smaller than this header's wb_broker_info),
 * WB_E_BROKER_GONE (the broker died or exited, and no successor took the client back yet). */
WB_API int wb_broker_get_info(wb_client *client, wb_broker_info *out);

/*
 * Caveats
 * -------
 * - The segment is mapped writable by every client of the broker's uid: a client that scribbles over it can
 *   break other clients of the same broker. The broker refuses other uids; run one broker per trust domain.
 * - Versions are 48-bit (WB_VERSION_MAX); publishing beyond it fails with WB_E_NOSPC.
 * - With R >= 2, wb_update_tensor hands out a replica holding an older version's bytes: write all of it.
 * - With R = 1 a reader that never releases blocks the publisher (begin times out with WB_E_TIMEOUT); a
 *   publisher that keeps updating can make R = 1 acquires wait. Use R >= 2 for readers that hold versions.
 * - Topics live until the broker exits cleanly; there is no call to delete one yet. A broker killed or crashed
 *   leaves its segment and host allocations in /dev/shm, and the next weightbusd of the same name adopts them
 *   with every published version; its clients resume (see Conventions). A client that makes no call keeps its
 *   slot in the successor until its process exits.
 * - CUDA VMM memory (wb_tensor_alloc_cuda, registered VMM memory) outlives a broker restart while its exporter
 *   lives: readers keep the mappings they had; a new mapping waits (WB_E_STATE, "retry") until the exporter
 *   resumes and exports it again, which its next call does. An exporter that died while no broker ran takes
 *   its VMM memory with it (WB_E_STALE).
 * - The broker limits what one client (one connection) may create: topics, tensors and views, allocations and
 *   host memory (weightbusd --max-*-per-client, by default half of each table and of the machine's memory).
 *   What it created stays when it detaches; a new connection starts with a fresh allowance.
 * - A process must not use a handle after fork(); attach again in the child.
 * - CUDA: a publisher killed while GPU work it published on a stream is still running leaves that version's
 *   bytes undefined (its context is torn down with the work); readers are not told. Legacy-IPC tensors die
 *   with their exporter (WB_E_STALE); use wb_tensor_alloc_cuda or VMM memory for tensors that must outlive it.
 * - CUDA: a revoked tensor cannot be re-pointed at new memory; the topic keeps it as stale.
 * - CUDA: a reader that never calls into the library keeps revoked memory mapped, and wb_tensor_revoke times
 *   out waiting for it.
 * - CUDA, this version: the first wb_snapshot_copy_into in a CUDA context JIT-compiles its copy kernel (about
 *   90 ms on an H100; the driver caches the result on disk for later processes). The kernel's PTX comes from
 *   the nvcc the library was built with and needs a driver at least as new (CUDA 13 for nvcc 13); with an older
 *   driver, or a library built without nvcc, every copy is one cuMemcpyAsync, which for many small tensors
 *   costs the driver's overhead per call (about 6 us each).
 */

#ifdef __cplusplus
}
#endif

#endif /* WEIGHTBUS_WEIGHTBUS_H */
