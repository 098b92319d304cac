package weightbus

/*
#include "wbgo.h"
*/
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"
)

// Snapshot is a lease on one version of a topic (Topic.Acquire): no byte of it changes until Close releases
// the lease. Its tensors' memory must not be used after Close.
type Snapshot struct {
	s           *C.wb_snapshot
	topic       *Topic
	version     uint64
	metadata    []byte
	publishedAt time.Time
}

// readRecord keeps the version, a copy of the metadata and the publish time, so that their accessors need no
// error: the calls fail only for NULL.
func (s *Snapshot) readRecord() {
	var version, timestamp C.uint64_t
	var data unsafe.Pointer
	var size C.uint32_t
	C.wb_snapshot_version(s.s, &version)
	C.wb_snapshot_metadata(s.s, &data, &size, &timestamp)
	s.version = uint64(version)
	s.metadata = C.GoBytes(data, C.int(size))
	s.publishedAt = time.Unix(0, int64(timestamp))
}

// Version is the leased version.
func (s *Snapshot) Version() uint64 {
	return s.version
}

// Metadata is the metadata the publisher gave this version (a copy).
func (s *Snapshot) Metadata() []byte {
	return s.metadata
}

// PublishedAt is when the version was published (the publisher's realtime clock).
func (s *Snapshot) PublishedAt() time.Time {
	return s.publishedAt
}

// Tensor looks a tensor or view up by name, with its bytes as of this version. ErrNotFound for an unknown name.
func (s *Snapshot) Tensor(name string) (Tensor, error) {
	cname, err := cString(name)
	if err != nil {
		return Tensor{}, err
	}
	defer C.free(unsafe.Pointer(cname))
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_snapshot_tensor(s.s, cname, &raw) }); err != nil {
		return Tensor{}, err
	}
	return tensorFromC(&raw), nil
}

// Shard (sharded topic) is shard index of rank rank of logical tensor name as of this version; its shape is the
// shard's extent. Tensor of a sharded tensor is ErrState.
func (s *Snapshot) Shard(name string, rank, index int) (Tensor, error) {
	cname, err := cString(name)
	if err != nil {
		return Tensor{}, err
	}
	defer C.free(unsafe.Pointer(cname))
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_snapshot_shard(s.s, cname, C.uint32_t(rank), C.uint32_t(index), &raw) }); err != nil {
		return Tensor{}, err
	}
	return tensorFromC(&raw), nil
}

// TensorAt is Tensor by index (0..TensorCount-1).
func (s *Snapshot) TensorAt(index int) (Tensor, error) {
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_snapshot_tensor_at(s.s, C.uint32_t(index), &raw) }); err != nil {
		return Tensor{}, err
	}
	return tensorFromC(&raw), nil
}

// Close releases the lease. The memory of the snapshot's tensors must not be used afterwards.
func (s *Snapshot) Close() error {
	if err := call(func() C.int { return C.wb_snapshot_release(s.s) }); err != nil {
		return err
	}
	s.s = nil
	atomic.AddInt32(&s.topic.open, -1)
	return nil
}
