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

// SlicePart is a box of one logical tensor that a destination takes, then Pad zero rows along the
// destination's ConcatDim (vLLM's vocabulary padding; usually 0).
type SlicePart struct {
	Name   string
	Offset []int64
	Extent []int64
	Pad    int64
}

// SliceDest is a host buffer of a plan: its parts concatenated along ConcatDim, contiguous, of Shape.
//
// DType is the buffer's: the parts' own copies their bytes; another converts them on the way (the header's
// "Conversions": bf16, f16 or f32 into DTypeF8E4M3 or DTypeF8E5M2, which need a ScaleLayout; f32 into
// DTypeBF16, which takes ScaleNone). BlockRows x BlockCols is ScaleBlock's block; both 0: 128 x 128
// (DeepSeek-V3's layout).
type SliceDest struct {
	DType                DType
	Shape                []int64
	Parts                []SlicePart
	ConcatDim            int
	ScaleLayout          ScaleLayout
	BlockRows, BlockCols uint32
}

// ScaleLayout says how many f32 scales an FP8 destination has and which elements share each (WB_SCALE_*):
// the plan allocates them beside the buffer, and Plan.Scales reads them. A scale dequantizes: value ~= fp8 *
// scale (vLLM's weight_scale, DeepSeek-V3's weight_scale_inv). Groups are taken over the destination as a
// row-major matrix [R, C], as the header's "Conversions" defines it.
type ScaleLayout uint32

// The WB_SCALE_* values.
const (
	ScaleNone    ScaleLayout = 0 // no scales: a plain copy, or f32 into bf16
	ScaleTensor  ScaleLayout = 1 // one scale for the whole destination
	ScaleChannel ScaleLayout = 2 // one per row, Shape[0] of them (vLLM's per-channel weight_scale)
	ScaleBlock   ScaleLayout = 3 // one per BlockRows x BlockCols block of a 2-D destination, row-major
)

// scaleCount is how many scales dest's layout gives its shape, by the header's count, so that the plan owns a
// buffer of exactly that size. Whether the layout fits the shape and the dtypes is the library's to check
// (ErrShape for a block of a destination that is not 2-D, ErrInval for an unknown layout or a block with one
// side 0).
func scaleCount(dest SliceDest) int {
	shape := make([]int, len(dest.Shape))
	for i, extent := range dest.Shape {
		shape[i] = int(max64(extent, 0))
	}
	switch {
	case dest.ScaleLayout == ScaleNone:
		return 0
	case dest.ScaleLayout == ScaleChannel && len(shape) > 0:
		return shape[0]
	case dest.ScaleLayout == ScaleBlock && len(shape) > 0:
		rows := 1
		for _, extent := range shape[:len(shape)-1] {
			rows *= extent
		}
		blockRows, blockCols := dest.BlockRows, dest.BlockCols
		if blockRows == 0 && blockCols == 0 {
			blockRows, blockCols = 128, 128
		}
		return ceilDiv(rows, blockRows) * ceilDiv(shape[len(shape)-1], blockCols)
	default: // ScaleTensor, a scalar's channel or block, and layouts the library refuses
		return 1
	}
}

// ceilDiv is ceil(n / d); a d of 0 (a block side the library refuses) counts as 1, only to stay defined.
func ceilDiv(n int, d uint32) int {
	if d == 0 {
		d = 1
	}
	return (n + int(d) - 1) / int(d)
}

// PlanInfo is what a run copies, and how the plan's arms went (wb_plan_info).
type PlanInfo struct {
	Dests    int
	Copies   int // region copies per run, of which Copies2D strided
	Copies2D int
	Bytes    uint64
	PadBytes uint64
	// Arms made, of which GPU arms, of which a wait found copied by the GPU (see the header's "GPU arms").
	Arms           uint64
	GpuArms        uint64
	GpuArmsClaimed uint64
}

// Plan is destinations resolved once into region copies from a topic's shards (wb_plan_create), run for each
// version. It owns its host buffers and scales, in C memory (the library writes them on every Run and every
// Armed.Wait); Output and Scales read them until Close.
type Plan struct {
	p       *C.wb_plan
	topic   *Topic
	buffers []unsafe.Pointer
	sizes   []int
	scales  []unsafe.Pointer // nil for a destination without scales
	counts  []int
	arms    int32 // arms of the plan neither spent nor released
}

// NewPlan checks every destination against the topic's complete layout and allocates its buffers, scales too.
// Errors: those of wb_plan_create: ErrNotFound, ErrState before the layout is complete, ErrDType (parts of
// different dtypes, a DType that is neither theirs nor a conversion of it, a ScaleLayout that does not fit the
// pair), ErrShape (boxes and shapes that do not fit; ScaleBlock on a destination that is not 2-D), ErrInval.
func NewPlan(topic *Topic, dests ...SliceDest) (*Plan, error) {
	var names cStrings
	defer names.free()
	plan := &Plan{topic: topic}
	var rawParts []C.wb_slice_part
	rawDests := make([]C.wb_slice_dest, len(dests))
	for i, dest := range dests {
		rawDests[i] = C.wbgo_slice_dest()
		d := &rawDests[i]
		d.first_part, d.part_count = C.uint32_t(len(rawParts)), C.uint32_t(len(dest.Parts))
		d.concat_dim, d.dtype = C.uint32_t(dest.ConcatDim), C.int32_t(dest.DType)
		var err error
		if d.ndim, err = copyDims(&d.shape, dest.Shape, fmt.Sprintf("destination %d", i)); err != nil {
			plan.free()
			return nil, err
		}
		size := dest.DType.Size()
		for _, extent := range dest.Shape {
			size *= int(max64(extent, 0))
		}
		buffer := C.calloc(C.size_t(size+1), 1) // +1: a valid pointer for an empty destination too
		plan.buffers, plan.sizes = append(plan.buffers, buffer), append(plan.sizes, size)
		d.dst, d.dst_bytes = buffer, C.uint64_t(size)
		d.scale_layout = C.uint32_t(dest.ScaleLayout)
		d.block_rows, d.block_cols = C.uint32_t(dest.BlockRows), C.uint32_t(dest.BlockCols)
		var scale unsafe.Pointer
		count := scaleCount(dest)
		if dest.ScaleLayout != ScaleNone {
			scale = C.calloc(C.size_t(count+1), 4) // +1: a valid pointer for no scales too
			d.scale, d.scale_bytes = scale, C.uint64_t(4*count)
		}
		plan.scales, plan.counts = append(plan.scales, scale), append(plan.counts, count)
		for _, part := range dest.Parts {
			raw := C.wbgo_slice_part()
			if raw.name, err = names.add(part.Name); err != nil {
				plan.free()
				return nil, err
			}
			raw.pad = C.int64_t(part.Pad)
			raw.ndim, err = copyDims(&raw.offset, part.Offset, part.Name)
			if err == nil && len(part.Extent) != len(part.Offset) {
				err = &Error{Code: ErrShape, Message: fmt.Sprintf("part of '%s': offset and extent differ in length", part.Name)}
			}
			if err != nil {
				plan.free()
				return nil, err
			}
			copyDims(&raw.extent, part.Extent, part.Name)
			rawParts = append(rawParts, raw)
		}
	}
	var firstDest *C.wb_slice_dest
	if len(rawDests) > 0 {
		firstDest = &rawDests[0]
	}
	var firstPart *C.wb_slice_part
	if len(rawParts) > 0 {
		firstPart = &rawParts[0]
	}
	err := call(func() C.int {
		return C.wb_plan_create(topic.t, firstDest, C.uint32_t(len(rawDests)), firstPart, C.uint32_t(len(rawParts)), &plan.p)
	})
	if err != nil {
		plan.free()
		return nil, err
	}
	return plan, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// Run fills the buffers with snapshot's version (a snapshot of the plan's topic). Errors: ErrInval (another
// topic's snapshot), ErrStale, ErrNoCUDA, ErrCUDA.
func (p *Plan) Run(snapshot *Snapshot) error {
	return call(func() C.int { return C.wb_plan_run(p.p, snapshot.s, nil) })
}

// Arm leases the first version newer than after (the last one the caller loaded; 0: any) for a Run of the plan,
// before that version is published if need be (wb_plan_arm): the latest, if it is newer and can be read now,
// else the version after the latest. Armed.Wait then waits for it, fills the buffers and returns its snapshot.
// While the armed version is not published its lease keeps nothing waiting (an R = 1 publisher writes it in place
// all the same); once it is, the lease pins it as a snapshot's does. The arm counts as a snapshot of the plan's
// topic for Topic.Close, and holds off the plan's Close. Errors: ErrInval (after is beyond the latest version, or
// no version can follow the latest; a closed plan), ErrNotFound (the topic was removed), ErrNoSpace (every
// lease slot of the client is held), ErrNoMem.
//
//	var seen uint64
//	for {
//		armed, err := plan.Arm(seen) // before the trainer publishes
//		...
//		snapshot, err := armed.Wait(ctx) // published: plan.Output holds it
//		...
//		seen = snapshot.Version()
//		snapshot.Close()
//	}
func (p *Plan) Arm(after uint64) (*Armed, error) {
	armed := &Armed{plan: p}
	if err := call(func() C.int { return C.wb_plan_arm(p.p, C.uint64_t(after), nil, &armed.a) }); err != nil {
		return nil, err
	}
	atomic.AddInt32(&p.arms, 1)
	atomic.AddInt32(&p.topic.open, 1)
	return armed, nil
}

// Armed is a plan's Run of a version leased ahead (Plan.Arm), perhaps before it is published. Wait for it, or
// Release it: a Wait that does not time out spends it, and after that Wait fails with ErrInval and Release does
// nothing, so that `defer armed.Release()` is safe. Use it from one goroutine at a time; close its plan and
// topic after it.
type Armed struct {
	a    *C.wb_armed
	plan *Plan
}

func errSpent() error {
	return &Error{Code: ErrInval, Message: "the arm is spent (waited for or released): arm the plan again"}
}

// Version is the version armed now; a Wait may move it to a later one when the armed version will not come (the
// publisher skipped it, or an R >= 2 reader fell so far behind that its record is gone). ErrInval once the arm
// is spent.
func (a *Armed) Version() (uint64, error) {
	if a.a == nil {
		return 0, errSpent()
	}
	var version C.uint64_t
	err := call(func() C.int { return C.wb_armed_version(a.a, &version) })
	return uint64(version), err
}

// OnStream says whether this is a GPU arm (wb_armed_on_stream): its copies are enqueued on its stream already, to
// run the moment the version is published, and the stream is held until then (or until the arm is withdrawn or
// its hold runs out: see the header's "GPU arms");
// false: Wait runs them. ErrInval once the arm is spent.
func (a *Armed) OnStream() (bool, error) {
	if a.a == nil {
		return false, errSpent()
	}
	var flag C.int
	err := call(func() C.int { return C.wb_armed_on_stream(a.a, &flag) })
	return flag != 0, err
}

// Wait waits until the armed version is published or ctx ends, fills the plan's buffers with it (Run) and
// returns its snapshot: close it as any, after reading the buffers if they must not change meanwhile. When ctx
// ends first (ctx.Err() is returned, nothing done) the arm stays: wait again or Release it; on any other return
// it is spent. Errors: ctx.Err(), ErrDirty (the version was published
// but an R = 1 topic is still left half-written by a publisher that died: arm again for the version that mends
// it), ErrNotFound (the topic was removed), ErrBrokerGone, those of Run (its snapshot closed: some buffers may
// hold the version's bytes), ErrInval (the arm is spent).
func (a *Armed) Wait(ctx context.Context) (*Snapshot, error) {
	if a.a == nil {
		return nil, errSpent()
	}
	snapshot := &Snapshot{topic: a.plan.topic}
	err := sliced(ctx, func(timeoutMs C.int64_t) C.int { return C.wb_armed_wait(a.a, timeoutMs, &snapshot.s) })
	if err != nil && err == ctx.Err() { // each slice's timeout keeps the arm
		return nil, err
	}
	a.a = nil // freed by the call
	atomic.AddInt32(&a.plan.arms, -1)
	if err != nil {
		atomic.AddInt32(&a.plan.topic.open, -1)
		return nil, err
	}
	snapshot.readRecord() // the arm's count in topic.open passes to the snapshot
	return snapshot, nil
}

// Release withdraws the arm: its lease is dropped and nothing is copied. Once the arm is spent (a Wait that did
// not time out, or Release) it does nothing.
func (a *Armed) Release() error {
	if a.a == nil {
		return nil
	}
	err := call(func() C.int { return C.wb_armed_release(a.a) })
	a.a = nil // not to be used again, whatever the call returns
	atomic.AddInt32(&a.plan.arms, -1)
	atomic.AddInt32(&a.plan.topic.open, -1)
	return err
}

// Info describes the plan, and how its arms went.
func (p *Plan) Info() (PlanInfo, error) {
	raw := C.wbgo_plan_info()
	err := call(func() C.int { return C.wb_plan_get_info(p.p, &raw) })
	return PlanInfo{Dests: int(raw.dests), Copies: int(raw.copies), Copies2D: int(raw.copies_2d), Bytes: uint64(raw.bytes),
		PadBytes: uint64(raw.pad_bytes), Arms: uint64(raw.arms), GpuArms: uint64(raw.gpu_arms),
		GpuArmsClaimed: uint64(raw.gpu_arms_claimed)}, err
}

// Output is destination index's bytes as of the last Run, valid until Close (copy them to keep them). An index
// out of range panics, as a slice's does.
func (p *Plan) Output(index int) []byte {
	return unsafe.Slice((*byte)(p.buffers[index]), p.sizes[index])
}

// Scales is destination index's f32 scales as of the last Run, laid out as its ScaleLayout says (empty for
// ScaleNone), valid until Close. An index out of range panics, as a slice's does.
func (p *Plan) Scales(index int) []float32 {
	return unsafe.Slice((*float32)(p.scales[index]), p.counts[index])
}

// Close frees the plan and its buffers. It refuses with ErrState while arms of the plan are held (Arm): wait for
// or release them first.
func (p *Plan) Close() error {
	if arms := atomic.LoadInt32(&p.arms); arms > 0 {
		return &Error{Code: ErrState, Message: fmt.Sprintf("%d arm(s) of this plan are still held: wait for or release them first", arms)}
	}
	if p.p != nil {
		C.wb_plan_destroy(p.p)
		p.p = nil
	}
	p.free()
	return nil
}

func (p *Plan) free() {
	for _, b := range append(p.buffers, p.scales...) {
		C.free(b)
	}
	p.buffers, p.sizes, p.scales, p.counts = nil, nil, nil, nil
}

// Split is rank rank of ranks's offset and extent of a dimension of size (wb_split); mode SplitEven or
// SplitChunk.
func Split(size int64, rank, ranks int, mode uint32) (offset, extent int64, err error) {
	var o, e C.int64_t
	err = call(func() C.int {
		return C.wb_split(C.int64_t(size), C.uint32_t(rank), C.uint32_t(ranks), C.uint32_t(mode), &o, &e)
	})
	return int64(o), int64(e), err
}

// SplitVocab is vLLM's vocabulary split (wb_split_vocab): rank rank's real rows [offset, offset+extent), then
// padded-extent rows of zeros.
func SplitVocab(vocab, padTo int64, rank, ranks int) (offset, extent, padded int64, err error) {
	var o, e, p C.int64_t
	err = call(func() C.int {
		return C.wb_split_vocab(C.int64_t(vocab), C.int64_t(padTo), C.uint32_t(rank), C.uint32_t(ranks), &o, &e, &p)
	})
	return int64(o), int64(e), int64(p), err
}

// PartsQKV is vLLM's fused QKV parts of rank rank (wb_parts_qkv): q, k and v, concatenated along dimension 0.
func PartsQKV(q, k, v string, heads, kvHeads, headDim, hidden int64, rank, ranks int) ([]SlicePart, error) {
	var names cStrings
	defer names.free()
	var c [3]*C.char
	for i, name := range []string{q, k, v} {
		var err error
		if c[i], err = names.add(name); err != nil {
			return nil, err
		}
	}
	var out [3]C.wb_slice_part
	err := call(func() C.int {
		return C.wb_parts_qkv(c[0], c[1], c[2], C.int64_t(heads), C.int64_t(kvHeads), C.int64_t(headDim), C.int64_t(hidden),
			C.uint32_t(rank), C.uint32_t(ranks), &out[0])
	})
	if err != nil {
		return nil, err
	}
	return partsFromC([]string{q, k, v}, out[:]), nil
}

// PartsMerged is vLLM's MergedColumnParallelLinear parts of rank rank (wb_parts_merged): rows of each names[i]
// ([rows[i], cols]), concatenated along dimension 0.
func PartsMerged(names []string, rows []int64, cols int64, rank, ranks int) ([]SlicePart, error) {
	if len(names) != len(rows) || len(names) == 0 {
		return nil, &Error{Code: ErrInval, Message: fmt.Sprintf("%d names but %d row counts", len(names), len(rows))}
	}
	var strs cStrings
	defer strs.free()
	c := make([]*C.char, len(names)) // Go memory holding C pointers only: cgo lets C read it during the call
	cRows := make([]C.int64_t, len(rows))
	for i, name := range names {
		var err error
		if c[i], err = strs.add(name); err != nil {
			return nil, err
		}
		cRows[i] = C.int64_t(rows[i])
	}
	out := make([]C.wb_slice_part, len(names))
	err := call(func() C.int {
		return C.wb_parts_merged(&c[0], &cRows[0], C.uint32_t(len(names)), C.int64_t(cols), C.uint32_t(rank), C.uint32_t(ranks), &out[0])
	})
	if err != nil {
		return nil, err
	}
	return partsFromC(names, out), nil
}

// partsFromC takes the names from the caller: the C parts point at copies freed by now.
func partsFromC(names []string, raw []C.wb_slice_part) []SlicePart {
	parts := make([]SlicePart, len(raw))
	for i, r := range raw {
		n := int(r.ndim)
		parts[i] = SlicePart{Name: names[i], Pad: int64(r.pad), Offset: make([]int64, n), Extent: make([]int64, n)}
		for d := 0; d < n; d++ {
			parts[i].Offset[d], parts[i].Extent[d] = int64(r.offset[d]), int64(r.extent[d])
		}
	}
	return parts
}
