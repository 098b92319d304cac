package weightbus

/*
#include "wbgo.h"
*/
import "C"

import "fmt"

// DType is a tensor's element type (WB_DTYPE_*).
type DType int32

// The WB_DTYPE_* values.
const (
	DTypeBool   DType = 1
	DTypeU8     DType = 2
	DTypeI8     DType = 3
	DTypeI16    DType = 4
	DTypeI32    DType = 5
	DTypeI64    DType = 6
	DTypeF16    DType = 7
	DTypeBF16   DType = 8
	DTypeF32    DType = 9
	DTypeF64    DType = 10
	DTypeF8E4M3 DType = 11
	DTypeF8E5M2 DType = 12
	DTypeU16    DType = 13
	DTypeU32    DType = 14
	DTypeU64    DType = 15
)

// Size is the bytes per element, 0 for an unknown dtype.
func (d DType) Size() int {
	return int(C.wb_dtype_size(C.int32_t(d)))
}

// String is the library's lower-case name ("bf16", "f8e4m3", ...), or "dtype N" for an unknown one.
func (d DType) String() string {
	name := C.wb_dtype_name(C.int32_t(d))
	if name == nil {
		return fmt.Sprintf("dtype %d", int32(d))
	}
	return C.GoString(name)
}

// DeviceType says where a tensor's bytes live (WB_DEVICE_*).
type DeviceType int32

const (
	DeviceHost DeviceType = 1 // host memory of this process
	DeviceCUDA DeviceType = 2 // a CUDA device: the tensor's Pointer is a device pointer
)

// Element is a Go type whose values are exactly one dtype's elements, for Slice. (Bool tensors are read as
// bytes: Go's bool must be 0 or 1.)
type Element interface {
	uint8 | int8 | int16 | uint16 | int32 | uint32 | int64 | uint64 | float32 | float64
}

// dtypeOf is the dtype whose elements are T.
func dtypeOf[T Element]() DType {
	var zero T
	switch any(zero).(type) {
	case uint8:
		return DTypeU8
	case int8:
		return DTypeI8
	case int16:
		return DTypeI16
	case uint16:
		return DTypeU16
	case int32:
		return DTypeI32
	case uint32:
		return DTypeU32
	case int64:
		return DTypeI64
	case uint64:
		return DTypeU64
	case float32:
		return DTypeF32
	default:
		return DTypeF64
	}
}
