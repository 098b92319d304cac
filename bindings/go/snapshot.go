package weightbus

/*
#include "wbgo.h"
*/
import "C"

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"
)

// Snapshot is a lease on one version of a topic (Topic.Acquire, Armed.Wait): no byte of it changes until Close
// releases the lease. Its tensors' memory must not be used after Close.
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

// Tensors is every tensor and view of the topic, by index, described in one call (wb_snapshot_tensors): what
// a reader that takes a whole version calls instead of TensorAt for each index. A sharded topic's logical
// tensors are ErrState, as with Tensor.
func (s *Snapshot) Tensors() ([]Tensor, error) {
	var count C.uint32_t
	if err := call(func() C.int { return C.wb_snapshot_tensors(s.s, nil, 0, &count) }); err != nil {
		return nil, err
	}
	for {
		capacity := count
		raw := make([]C.wb_tensor_info, int(capacity)+1) // one more: the library reads the first one's struct_size
		for i := range raw {
			raw[i] = C.wbgo_tensor_info()
		}
		err := call(func() C.int { return C.wb_snapshot_tensors(s.s, &raw[0], capacity, &count) })
		if errors.Is(err, ErrSize) && count > capacity {
			continue // views added since the count was read: ask again for the new count
		}
		if err != nil {
			return nil, err
		}
		tensors := make([]Tensor, count)
		for i := range tensors {
			tensors[i] = tensorFromC(&raw[i])
		}
		return tensors, nil
	}
}

// Place is where the snapshot's tensors lie, as a number (wb_snapshot_place): two snapshots of one topic with
// equal nonzero places (and equal tensor counts) have their tensors at the same addresses, so what a reader
// built from one version's tensors holds for the other; 0 says nothing (R >= 2: each version has its replica).
func (s *Snapshot) Place() uint64 {
	var place C.uint64_t
	C.wb_snapshot_place(s.s, &place) // fails only for NULL
	return uint64(place)
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
