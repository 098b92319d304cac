package weightbus

/*
#include "wbgo.h"
*/
import "C"

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Topic is a topic opened by Client.CreateTopic (publisher) or Client.OpenTopic (reader). Close it after its
// snapshots and update; a publisher's topic stays in the broker with its tensors and versions.
type Topic struct {
	t      *C.wb_topic
	client *Client
	open   int32 // snapshots, arms (Plan.Arm) and updates not closed yet
}

// Close closes the handle. It refuses with ErrState while snapshots, arms (Plan.Arm) or an update of it are open;
// after Close, calls on the topic fail with ErrInval.
func (t *Topic) Close() error {
	if open := atomic.LoadInt32(&t.open); open > 0 {
		return &Error{Code: ErrState, Message: fmt.Sprintf("%d snapshot(s), arm(s) or update(s) of this topic are still open: close them first", open)}
	}
	if err := call(func() C.int { return C.wb_topic_close(t.t) }); err != nil {
		return err
	}
	t.t = nil
	atomic.AddInt32(&t.client.open, -1)
	return nil
}

// Info describes the topic.
func (t *Topic) Info() (TopicInfo, error) {
	raw := C.wbgo_topic_info()
	err := call(func() C.int { return C.wb_topic_get_info(t.t, &raw) })
	return topicInfoFromC(&raw), err
}

// TensorSpec is a host tensor to allocate.
type TensorSpec struct {
	Name  string
	DType DType
	Shape []int64 // at most MaxDims extents; empty for a scalar
}

// Alloc (publisher only) allocates host tensors, zero-filled and Alignment-aligned, in one shared allocation,
// all or nothing. A name that exists with the same dtype and shape keeps its storage, so a publisher taking
// over can run its set-up again. Errors: ErrRole, ErrNameTooLong, ErrDType, ErrShape, ErrExists, ErrState (after
// the first publish), ErrNoSpace.
func (t *Topic) Alloc(specs ...TensorSpec) error {
	var names cStrings
	defer names.free()
	raw := make([]C.wb_tensor_spec, len(specs))
	for i, spec := range specs {
		raw[i] = C.wbgo_tensor_spec()
		name, err := names.add(spec.Name)
		if err != nil {
			return err
		}
		raw[i].name, raw[i].dtype = name, C.int32_t(spec.DType)
		if raw[i].ndim, err = copyDims(&raw[i].shape, spec.Shape, spec.Name); err != nil {
			return err
		}
	}
	var first *C.wb_tensor_spec
	if len(raw) > 0 {
		first = &raw[0]
	}
	return call(func() C.int { return C.wb_tensor_alloc(t.t, first, C.uint32_t(len(raw))) })
}

// ViewSpec is a view: a strided window on another tensor's bytes.
type ViewSpec struct {
	Name       string
	Parent     string // a tensor or view of the same topic
	DType      DType
	ByteOffset uint64 // from the start of the parent's bytes; a multiple of the dtype's size
	Shape      []int64
	Strides    []int64 // in elements of DType, one per dimension
}

// AddView registers a zero-copy view; any client that opened the topic may, at any time. Registering the same
// definition again is accepted.
func (t *Topic) AddView(view ViewSpec) error {
	if len(view.Strides) != len(view.Shape) {
		return &Error{Code: ErrShape, Message: fmt.Sprintf("view '%s': %d strides for %d dimensions", view.Name, len(view.Strides), len(view.Shape))}
	}
	var names cStrings
	defer names.free()
	raw := C.wbgo_view_spec()
	var err error
	if raw.name, err = names.add(view.Name); err != nil {
		return err
	}
	if raw.parent, err = names.add(view.Parent); err != nil {
		return err
	}
	raw.dtype, raw.byte_offset = C.int32_t(view.DType), C.uint64_t(view.ByteOffset)
	if raw.ndim, err = copyDims(&raw.shape, view.Shape, view.Name); err != nil {
		return err
	}
	if _, err = copyDims(&raw.strides, view.Strides, view.Name); err != nil {
		return err
	}
	return call(func() C.int { return C.wb_tensor_view(t.t, &raw) })
}

// copyDims copies dims into a fixed C array and returns their count; more than MaxDims is ErrShape.
func copyDims(dest *[MaxDims]C.int64_t, dims []int64, name string) (C.uint32_t, error) {
	if len(dims) > MaxDims {
		return 0, &Error{Code: ErrShape, Message: fmt.Sprintf("tensor '%s': %d dimensions, at most %d are allowed", name, len(dims), MaxDims)}
	}
	for i, d := range dims {
		dest[i] = C.int64_t(d)
	}
	return C.uint32_t(len(dims)), nil
}

// TensorCount is the number of tensors and views of the topic.
func (t *Topic) TensorCount() (int, error) {
	var count C.uint32_t
	err := call(func() C.int { return C.wb_topic_tensor_count(t.t, &count) })
	return int(count), err
}

// TensorInfo is the layout of tensor index (0..TensorCount-1); its Version is the latest that wrote it.
func (t *Topic) TensorInfo(index int) (TensorInfo, error) {
	raw := C.wbgo_tensor_info()
	if err := call(func() C.int { return C.wb_topic_tensor(t.t, C.uint32_t(index), &raw) }); err != nil {
		return TensorInfo{}, err
	}
	return tensorInfoFromC(&raw), nil
}

// Begin (publisher only) starts writing version latest+1, waiting while leases block it until ctx ends
// (ctx.Err() then; nothing changed).
func (t *Topic) Begin(ctx context.Context) (*Update, error) {
	update := &Update{topic: t}
	err := sliced(ctx, func(timeoutMs C.int64_t) C.int { return C.wb_update_begin(t.t, timeoutMs, &update.u) })
	if err != nil {
		return nil, err
	}
	var version C.uint64_t
	C.wb_update_version(update.u, &version) // fails only for NULL
	update.version = uint64(version)
	atomic.AddInt32(&t.open, 1)
	return update, nil
}

// Latest is the latest published version (0 before the first).
func (t *Topic) Latest() (uint64, error) {
	var version C.uint64_t
	err := call(func() C.int { return C.wb_topic_latest(t.t, &version) })
	return uint64(version), err
}

// Wait blocks until a version newer than after is published and returns the latest (at once if one already
// is), or until ctx is cancelled or its deadline passes (ctx.Err() then). ErrBrokerGone if the broker dies.
func (t *Topic) Wait(ctx context.Context, after uint64) (uint64, error) {
	var version C.uint64_t
	err := sliced(ctx, func(timeoutMs C.int64_t) C.int {
		return C.wb_topic_wait(t.t, C.uint64_t(after), timeoutMs, &version)
	})
	return uint64(version), err
}

// NotifyFD is a descriptor for poll/epoll loops that becomes readable when there is something to do for the
// topic: a publish, or a broker restart to follow. It is one descriptor for the topic's lifetime, broker
// restarts included, and an epoll instance: do not read it, call NotifyAck each time it is readable. Versions
// published before the first call are not signalled: call Latest once after getting it. The topic owns it: do
// not close it.
func (t *Topic) NotifyFD() (int, error) {
	var fd C.int
	err := call(func() C.int { return C.wb_topic_notify_fd(t.t, &fd) })
	return int(fd), err
}

// NotifyAck is called each time the NotifyFD descriptor is readable: it consumes the wake-up, follows the
// broker across restarts and returns the latest version, which need not be newer than the last one seen.
// ErrBrokerGone once no successor may take this client back; ErrState before NotifyFD.
func (t *Topic) NotifyAck() (uint64, error) {
	var latest C.uint64_t
	err := call(func() C.int { return C.wb_topic_notify_ack(t.t, &latest) })
	return uint64(latest), err
}

// Acquire leases version (0: the latest) until the snapshot is closed, waiting while an R = 1 update is being
// written until ctx ends (ctx.Err() then). Errors: ErrNotFound (nothing or not yet published), ErrExpired,
// ErrDirty, ErrNoSpace (this client's lease slots are full), ErrBrokerGone.
func (t *Topic) Acquire(ctx context.Context, version uint64) (*Snapshot, error) {
	snapshot := &Snapshot{topic: t}
	err := sliced(ctx, func(timeoutMs C.int64_t) C.int {
		return C.wb_snapshot_acquire(t.t, C.uint64_t(version), timeoutMs, &snapshot.s)
	})
	if err != nil {
		return nil, err
	}
	snapshot.readRecord()
	atomic.AddInt32(&t.open, 1)
	return snapshot, nil
}

// ShardSpec is a rank's shard: the box Offset..Offset+Extent of logical tensor Name (LogicalShape), or, with
// Replicated, a box every rank holding it holds alike.
type ShardSpec struct {
	Name         string
	DType        DType
	LogicalShape []int64
	Offset       []int64
	Extent       []int64
	Replicated   bool
}

// AllocShards (a rank's publisher, Client.CreateRank) allocates this rank's host shards. Errors: those of Alloc,
// ErrShape (a box outside its logical shape), ErrLayout (an overlap with, or another dtype or logical shape
// than, another rank's shard), ErrState (the layout is complete).
func (t *Topic) AllocShards(specs ...ShardSpec) error {
	var names cStrings
	defer names.free()
	raw := make([]C.wb_shard_spec, len(specs))
	for i, spec := range specs {
		raw[i] = C.wbgo_shard_spec()
		name, err := names.add(spec.Name)
		if err != nil {
			return err
		}
		raw[i].name, raw[i].dtype = name, C.int32_t(spec.DType)
		if spec.Replicated {
			raw[i].flags = C.WB_SHARD_REPLICATED
		}
		if raw[i].ndim, err = copyDims(&raw[i].logical_shape, spec.LogicalShape, spec.Name); err != nil {
			return err
		}
		if len(spec.Offset) != len(spec.LogicalShape) || len(spec.Extent) != len(spec.LogicalShape) {
			return &Error{Code: ErrShape, Message: fmt.Sprintf("shard of '%s': logical shape, offset and extent need the same number of dimensions", spec.Name)}
		}
		copyDims(&raw[i].offset, spec.Offset, spec.Name)
		copyDims(&raw[i].extent, spec.Extent, spec.Name)
	}
	var first *C.wb_shard_spec
	if len(raw) > 0 {
		first = &raw[0]
	}
	return call(func() C.int { return C.wb_shard_alloc(t.t, first, C.uint32_t(len(raw))) })
}

// SealRank (a rank's publisher): this rank registers no more shards (its first Begin does it too). The last
// rank's seal checks that the shards cover every logical tensor (ErrLayout; this rank stays unsealed).
func (t *Topic) SealRank(ctx context.Context) error {
	return sliced(ctx, func(timeoutMs C.int64_t) C.int { return C.wb_topic_seal_rank(t.t, timeoutMs) })
}

// RankInfo is a rank of a sharded topic (wb_rank_info).
type RankInfo struct {
	Rank        int
	PID         int // its publisher's process, 0 when none is attached
	Sealed      bool
	Shards      int
	Dirty       bool   // R = 1: its shards left half-written
	Published   uint64 // the last version it published (0: none); above Latest while other ranks lag
	Writing     uint64 // the version it is writing, 0 when none
	PublishedNs uint64
	BeginNs     uint64
	Bytes       uint64
}

// ShardBox describes shard number index of rank rank of logical tensor name as its rank registered it (any
// handle; no version needed). ErrNotFound when the rank holds no such shard, ErrInval for a plain topic.
func (t *Topic) ShardBox(name string, rank, index int) (ShardSpec, error) {
	cname, err := cString(name)
	if err != nil {
		return ShardSpec{}, err
	}
	defer C.free(unsafe.Pointer(cname))
	raw := C.wbgo_shard_spec()
	if err := call(func() C.int {
		return C.wb_topic_shard(t.t, cname, C.uint32_t(rank), C.uint32_t(index), &raw)
	}); err != nil {
		return ShardSpec{}, err
	}
	spec := ShardSpec{Name: name, DType: DType(raw.dtype), Replicated: raw.flags&C.WB_SHARD_REPLICATED != 0}
	for d := 0; d < int(raw.ndim); d++ {
		spec.LogicalShape = append(spec.LogicalShape, int64(raw.logical_shape[d]))
		spec.Offset = append(spec.Offset, int64(raw.offset[d]))
		spec.Extent = append(spec.Extent, int64(raw.extent[d]))
	}
	return spec, nil
}

// RankInfo describes rank rank of a sharded topic (any handle). ErrInval for a plain topic or a rank out of range.
func (t *Topic) RankInfo(rank int) (RankInfo, error) {
	raw := C.wbgo_rank_info()
	if err := call(func() C.int { return C.wb_topic_rank_info(t.t, C.uint32_t(rank), &raw) }); err != nil {
		return RankInfo{}, err
	}
	return RankInfo{
		Rank: int(raw.rank), PID: int(raw.pid), Sealed: raw.sealed != 0, Shards: int(raw.shards), Dirty: raw.dirty != 0,
		Published: uint64(raw.published), Writing: uint64(raw.writing), PublishedNs: uint64(raw.published_ns),
		BeginNs: uint64(raw.begin_ns), Bytes: uint64(raw.bytes),
	}, nil
}
