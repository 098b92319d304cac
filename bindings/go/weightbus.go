// Package weightbus shares tensors between processes on one node and moves through versions of them: Go
// bindings to libweightbus (include/weightbus/weightbus.h is the manual of the C API they wrap).
//
// A Client attaches to the broker (weightbusd). A publisher creates a Topic, allocates its tensors once and
// publishes versions through Updates. A reader opens the topic, waits for a version and leases it as a
// Snapshot: every tensor as of that version, read in place, unchanging until the snapshot is closed.
//
//	client, err := weightbus.Attach(nil) // $WEIGHTBUS_SOCKET, else the default broker
//	...
//	defer client.Close()
//	topic, err := client.OpenTopic("policy")
//	...
//	defer topic.Close()
//	version, err := topic.Wait(ctx, 0) // honours ctx's cancellation and deadline
//	...
//	snapshot, err := topic.Acquire(ctx, version)
//	...
//	tensor, err := snapshot.Tensor("layers.0.weight")
//	...
//	weights, err := weightbus.Slice[float32](tensor)
//	...
//	snapshot.Close() // releases the lease: weights must not be used afterwards
//
// Errors are *Error values carrying the WB_E_* Code and the library's message; the codes are sentinels for
// errors.Is (errors.Is(err, weightbus.ErrNotFound)).
//
// Handles must be closed explicitly, children first: a client with open topics, a topic with open snapshots,
// arms or an update, or a plan with arms, refuses to close (ErrState) rather than leave them dangling. A handle
// may be used from several goroutines at once, except an Update and an Armed (one goroutine at a time); do not
// close a handle while another goroutine uses it.
package weightbus

/*
#cgo pkg-config: weightbus
#include "wbgo.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// The library's version this package was written for (WB_VERSION_*).
const (
	VersionMajor  = 0
	VersionMinor  = 1
	VersionPatch  = 0
	Version       = VersionMajor*10000 + VersionMinor*100 + VersionPatch
	VersionString = "0.1.0"
)

// Limits of the C API.
const (
	NameMax       = 255       // bytes of a topic or tensor name
	MaxDims       = 8         // dimensions of a tensor
	MaxReplicas   = 4         // replicas of a topic
	MetadataMax   = 4096      // bytes of user metadata per version
	Alignment     = 64        // every host tensor allocated by the broker starts on this boundary
	CUDAAlignment = 256       // every tensor allocated on a GPU by the library starts on this boundary
	VersionMax    = 1<<48 - 1 // versions are 48-bit
	MaxRanks      = 64        // publishing ranks of a sharded topic
)

// Sharded topics: a shard that every rank holding its box holds alike, and how a dimension splits over ranks.
const (
	ShardReplicated = 1 // WB_SHARD_REPLICATED
	SplitEven       = 0 // WB_SPLIT_EVEN: size % ranks must be 0 (vLLM's and Megatron's tensor parallelism)
	SplitChunk      = 1 // WB_SPLIT_CHUNK: torch.chunk / DTensor Shard(d), the last chunks short or empty
)

// LibraryVersion is the loaded library's version, as Version computes it; it differs from Version when the
// library is not the one this package was written for.
func LibraryVersion() uint32 {
	return uint32(C.wb_version())
}

// LibraryVersionString is the same as a string, e.g. "0.1.0".
func LibraryVersionString() string {
	return C.GoString(C.wb_version_string())
}

// DefaultSocketPath is the socket path Attach uses when given none: $WEIGHTBUS_SOCKET, else the default path of
// brokerName ("": $WEIGHTBUS_NAME, else "default").
func DefaultSocketPath(brokerName string) (string, error) {
	var name *C.char
	if brokerName != "" {
		var err error
		if name, err = cString(brokerName); err != nil {
			return "", err
		}
		defer C.free(unsafe.Pointer(name))
	}
	buf := make([]C.char, 4096)
	err := call(func() C.int { return C.wb_default_socket_path(name, &buf[0], C.size_t(len(buf))) })
	if err != nil {
		return "", err
	}
	return C.GoString(&buf[0]), nil
}

// call runs one call into the library and returns its failure as an *Error. wb_last_error() is per thread, so
// the goroutine stays on its thread from the call until the message is read.
func call(f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	code := f()
	if code == C.WB_OK {
		return nil
	}
	return &Error{Code: Code(code), Message: C.GoString(C.wb_last_error())}
}

// waitSlice bounds each blocking call, so that a cancelled context is noticed within it.
const waitSlice = 20 * time.Millisecond

// sliced runs a blocking call (given its timeout in ms) in slices of at most waitSlice until it succeeds, fails
// with something other than ErrTimeout, or ctx ends (ctx.Err() is returned then).
func sliced(ctx context.Context, f func(timeoutMs C.int64_t) C.int) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		slice := waitSlice
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < slice {
			slice = time.Until(deadline)
		}
		if err := call(func() C.int { return f(millisCeil(slice)) }); !errors.Is(err, ErrTimeout) {
			return err
		}
	}
}

// millisCeil rounds up, so that a positive duration never becomes a poll (0 ms).
func millisCeil(d time.Duration) C.int64_t {
	if d <= 0 {
		return 0
	}
	return C.int64_t((d + time.Millisecond - 1) / time.Millisecond)
}

// cString copies s for C (free it with C.free). A NUL inside would silently cut it short, so it is refused.
func cString(s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{Code: ErrInval, Message: fmt.Sprintf("%q contains a NUL byte", s)}
	}
	return C.CString(s), nil
}

// cStrings holds the C copies of the names of one call; free releases them all.
type cStrings []*C.char

func (s *cStrings) add(str string) (*C.char, error) {
	c, err := cString(str)
	if err == nil {
		*s = append(*s, c)
	}
	return c, err
}

// setUnlessEmpty points *dest at a C copy of value, or leaves it NULL (the library's default) for "".
func (s *cStrings) setUnlessEmpty(dest **C.char, value string) (err error) {
	if value != "" {
		*dest, err = s.add(value)
	}
	return err
}

func (s cStrings) free() {
	for _, c := range s {
		C.free(unsafe.Pointer(c))
	}
}
