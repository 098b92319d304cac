package weightbus

/*
#include "wbgo.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// TensorInfo describes a tensor or view (wb_tensor_info).
type TensorInfo struct {
	Index   int // position in the topic, 0..TensorCount-1
	Name    string
	DType   DType
	Shape   []int64 // extents, one per dimension (empty for a scalar)
	Strides []int64 // in elements, as in DLPack
	NBytes  int     // bytes spanned, from the first element to one past the last
	Version uint64  // the version that last wrote these bytes (0: never written)
	IsView  bool
	Device  DeviceType
	GPU     [16]byte // the GPU's UUID for DeviceCUDA, zero for host
}

func tensorInfoFromC(raw *C.wb_tensor_info) TensorInfo {
	ndim := int(raw.ndim)
	info := TensorInfo{
		Index:   int(raw.index),
		Name:    C.GoString(raw.name),
		DType:   DType(raw.dtype),
		Shape:   make([]int64, ndim),
		Strides: make([]int64, ndim),
		NBytes:  int(raw.nbytes),
		Version: uint64(raw.version),
		IsView:  raw.is_view != 0,
		Device:  DeviceType(raw.device_type),
	}
	for i := 0; i < ndim; i++ {
		info.Shape[i] = int64(raw.shape[i])
		info.Strides[i] = int64(raw.strides[i])
	}
	for i := range info.GPU {
		info.GPU[i] = byte(raw.device_uuid[i])
	}
	return info
}

// Tensor is a tensor of a snapshot (its bytes as of the snapshot's version, valid until the snapshot is
// closed) or of an update (where to write, valid until it is published or aborted). A view's bytes are the
// span of its window on the parent: index them with Strides.
type Tensor struct {
	TensorInfo
	data unsafe.Pointer
}

func tensorFromC(raw *C.wb_tensor_info) Tensor {
	return Tensor{TensorInfo: tensorInfoFromC(raw), data: raw.data}
}

// Bytes is the tensor's host memory, in place: read-only for a snapshot (writing it faults), writable for an
// update. Not valid after the snapshot is closed or the update published. ErrInval for a CUDA tensor.
func (t Tensor) Bytes() ([]byte, error) {
	if t.Device != DeviceHost {
		return nil, &Error{Code: ErrInval, Message: fmt.Sprintf(
			"tensor '%s' is not in host memory (device type %d): use its Pointer", t.Name, t.Device)}
	}
	if t.NBytes == 0 {
		return []byte{}, nil // an empty tensor's pointer may be NULL
	}
	return unsafe.Slice((*byte)(t.data), t.NBytes), nil
}

// Pointer is where the bytes start in this process: a host address, or a CUDA device pointer for DeviceCUDA
// (for cudaMemcpyAsync through your own cgo).
func (t Tensor) Pointer() uintptr {
	return uintptr(t.data)
}

// Slice is the tensor's host memory as elements of T, which must be its dtype (else ErrDType), with the
// lifetime of Bytes.
//
//	weights, err := weightbus.Slice[float32](tensor)
func Slice[T Element](t Tensor) ([]T, error) {
	bytes, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	if want := dtypeOf[T](); t.DType != want {
		return nil, &Error{Code: ErrDType, Message: fmt.Sprintf("tensor '%s' holds %s, not %s", t.Name, t.DType, want)}
	}
	if len(bytes) == 0 {
		return []T{}, nil
	}
	var zero T
	return unsafe.Slice((*T)(unsafe.Pointer(&bytes[0])), len(bytes)/int(unsafe.Sizeof(zero))), nil
}
