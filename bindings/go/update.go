package weightbus

/*
#include "wbgo.h"
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// Update is version latest+1 of a topic being written (Topic.Begin). Readers see all of its tensors or none.
// Publish it, or Abort it: with R = 1 an aborted update may have written tensors in place, so the topic is
// dirty until they are published again. Use it from one goroutine at a time.
//
//	update, err := topic.Begin(ctx)
//	...
//	defer update.Abort() // does nothing once published
//	w, err := update.Tensor("layers.0.weight")
//	...
//	values, err := weightbus.Slice[float32](w)
//	...
//	copy(values, newWeights)
//	version, err := update.Publish([]byte(`{"step": 7}`))
type Update struct {
	u       *C.wb_update
	topic   *Topic
	version uint64
}

// Version is the version this update will publish.
func (u *Update) Version() uint64 {
	return u.version
}

// Tensor marks the tensor as changed by this update and returns where to write it (Bytes, Slice, or Pointer
// for a CUDA tensor), valid until the update is published or aborted. With two or more replicas the memory holds
// an older version's bytes: write all of it. Views are written through their parent (ErrState).
func (u *Update) Tensor(name string) (Tensor, error) {
	cname, err := cString(name)
	if err != nil {
		return Tensor{}, err
	}
	defer C.free(unsafe.Pointer(cname))
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_update_tensor(u.u, cname, &raw) }); err != nil {
		return Tensor{}, err
	}
	return tensorFromC(&raw), nil
}

// Shard (sharded topic) is this rank's shard index (registration order) of logical tensor name, marked
// changed, as Tensor does for a plain tensor. ErrNotFound if this rank has no such shard.
func (u *Update) Shard(name string, index int) (Tensor, error) {
	cname, err := cString(name)
	if err != nil {
		return Tensor{}, err
	}
	defer C.free(unsafe.Pointer(cname))
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_update_shard(u.u, cname, C.uint32_t(index), &raw) }); err != nil {
		return Tensor{}, err
	}
	return tensorFromC(&raw), nil
}

// TensorAt is Tensor by index (0..TensorCount-1).
func (u *Update) TensorAt(index int) (Tensor, error) {
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_update_tensor_at(u.u, C.uint32_t(index), &raw) }); err != nil {
		return Tensor{}, err
	}
	return tensorFromC(&raw), nil
}

// Publish publishes the update as one version with metadata (at most MetadataMax bytes, e.g. the training
// step) and returns the version; it wakes every waiter. On an error (ErrSize) the update stays open: fix the
// call, or Abort.
func (u *Update) Publish(metadata []byte) (uint64, error) {
	var data unsafe.Pointer
	if len(metadata) > 0 {
		data = unsafe.Pointer(&metadata[0])
	}
	var version C.uint64_t
	err := call(func() C.int { return C.wb_update_publish(u.u, data, C.uint32_t(len(metadata)), &version) })
	if err != nil {
		return 0, err
	}
	u.finish()
	return uint64(version), nil
}

// Abort drops the update: nothing is published. After Publish or Abort it does nothing, so that
// `defer update.Abort()` is safe.
func (u *Update) Abort() error {
	if u.u == nil {
		return nil
	}
	err := call(func() C.int { return C.wb_update_abort(u.u) })
	u.finish() // wb_update_abort frees the update whatever it returns
	return err
}

func (u *Update) finish() {
	u.u = nil
	atomic.AddInt32(&u.topic.open, -1)
}
