package weightbus

/*
#include "wbgo.h"
*/
import "C"

// Code is a WB_E_* code. The codes are also sentinel errors: errors.Is(err, ErrTimeout) tells whether err is
// an *Error with that code.
type Code int32

// The WB_E_* codes.
const (
	ErrInval       Code = -1  // an argument is out of range or malformed
	ErrNoMem       Code = -2  // this process ran out of memory
	ErrNotFound    Code = -3  // no topic/tensor of that name, or the version is not published
	ErrExists      Code = -4  // a tensor of that name exists with another dtype or shape
	ErrNameTooLong Code = -5  // a name is longer than NameMax bytes (or empty)
	ErrDType       Code = -6  // unknown dtype, a view's dtype does not fit its parent, or a Slice of another type
	ErrShape       Code = -7  // bad ndim, negative extent, or element count overflows
	ErrSize        Code = -8  // a byte range falls outside its storage, or metadata is too large
	ErrNoSpace     Code = -9  // a capacity of the broker (topics, tensors, clients, leases...) is exhausted
	ErrRole        Code = -10 // the call needs the publisher's handle and this is a reader's
	ErrBusy        Code = -11 // the topic already has a live publisher
	ErrTimeout     Code = -12 // the wait ran out; nothing was changed
	ErrBrokerGone  Code = -13 // the broker died or closed the connection
	ErrABIMismatch Code = -14 // the segment or broker speaks another layout/protocol version
	ErrDirty       Code = -15 // an R = 1 topic was left half-written by a publisher that died
	ErrExpired     Code = -16 // the version is older than what the topic still keeps
	ErrState       Code = -17 // the call does not fit the object's state (e.g. layout sealed, update open)
	ErrPerm        Code = -18 // refused by a credential check: the broker's, or the library's of the broker
	ErrProtocol    Code = -19 // a malformed message from the peer
	ErrIO          Code = -20 // a system call failed
	ErrNoCUDA      Code = -21 // CUDA is needed and absent
	ErrStale       Code = -22 // the tensor or allocation was revoked by its exporter
	ErrConnect     Code = -23 // no broker listens at the socket path
	ErrCUDA        Code = -24 // a CUDA driver call failed
	ErrLayout      Code = -25 // a sharded topic's shards overlap, leave a gap or disagree
)

// Error is wb_strerror's text for the code, e.g. "WB_E_TIMEOUT: the wait timed out".
func (c Code) Error() string {
	return C.GoString(C.wb_strerror(C.int(c)))
}

// Error is a failed call: its code, and the library's message naming what was wrong.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.Error()
	}
	return e.Code.Error() + ": " + e.Message
}

// Unwrap returns the Code, which makes errors.Is(err, ErrNotFound) work.
func (e *Error) Unwrap() error {
	return e.Code
}
