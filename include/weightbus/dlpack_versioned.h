/*
 * dlpack_versioned.h — DLPack 1.x's DLManagedTensorVersioned for programs whose dlpack.h is older than 1.0
 * (Debian's libdlpack-dev is 0.6), so that they can read what wb_snapshot_dlpack_versioned and
 * wb_update_dlpack_versioned return.
 *
 * It includes <dlpack/dlpack.h>. A dlpack.h of 1.0 or later (it defines DLPACK_MAJOR_VERSION) declares all of
 * this itself, and then this file adds nothing. Otherwise it declares the same names with the layout DLPack 1.x
 * publishes as its ABI, which tests/api/test-dlpack-versioned-exports-flag-snapshots-read-only.c checks field by
 * field. As in DLPack's header, the struct has no typedef: write `struct DLManagedTensorVersioned` in C.
 */
#ifndef WEIGHTBUS_DLPACK_VERSIONED_H
#define WEIGHTBUS_DLPACK_VERSIONED_H

#include <dlpack/dlpack.h>

#ifndef DLPACK_MAJOR_VERSION

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The DLPack version of a versioned struct: a consumer reads nothing but the deleter of a struct whose major it
 * does not know. */
typedef struct {
  uint32_t major;
  uint32_t minor;
} DLPackVersion;

/* Bits of DLManagedTensorVersioned.flags. */
#define DLPACK_FLAG_BITMASK_READ_ONLY (UINT64_C(1) << 0) /* the consumer must not write the data */
#define DLPACK_FLAG_BITMASK_IS_COPIED (UINT64_C(1) << 1) /* the data is a copy the consumer owns alone */

/* DLManagedTensor with a version and flags in front: the deleter frees it (and whatever manager_ctx holds). */
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void *manager_ctx;
  void (*deleter)(struct DLManagedTensorVersioned *self);
  uint64_t flags;
  DLTensor dl_tensor;
};

#ifdef __cplusplus
}
#endif

#endif /* DLPACK_MAJOR_VERSION */

#endif /* WEIGHTBUS_DLPACK_VERSIONED_H */
