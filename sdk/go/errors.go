package baton

// #include <stdlib.h>
// #include <baton/baton.h>
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// Code is what went wrong, as the C ABI's baton_errc numbers it; each says
// what the caller should do next. A Code is itself an error, so
// errors.Is(err, baton.NotFound) asks whether err is a baton error with
// that code.
type Code int

// The codes of baton.h, with the same numbers.
const (
	OK                 Code = C.BATON_OK
	Unavailable        Code = C.BATON_UNAVAILABLE         // transient: retry the call
	Aborted            Code = C.BATON_ABORTED             // the handoff rolled back, or exit was requested
	FailedPrecondition Code = C.BATON_FAILED_PRECONDITION // fix the state or configuration first
	DeadlineExceeded   Code = C.BATON_DEADLINE_EXCEEDED
	ProtocolError      Code = C.BATON_PROTOCOL_ERROR // the peer sent something malformed
	InvalidArgument    Code = C.BATON_INVALID_ARGUMENT
	Busy               Code = C.BATON_BUSY
	NotFound           Code = C.BATON_NOT_FOUND
	PermissionDenied   Code = C.BATON_PERMISSION_DENIED
	Internal           Code = C.BATON_INTERNAL     // a bug
	Incompatible       Code = C.BATON_INCOMPATIBLE // versions or schemas do not overlap
	IOError            Code = C.BATON_IO_ERROR     // the system refused: disk full, I/O error, ...
)

// String is the library's short lower-case name of the code ("failed
// precondition"), "unknown" for a number that is no code.
func (c Code) String() string { return C.GoString(C.baton_errc_name(C.int(c))) }

// Error makes a Code usable as an error target: errors.Is(err, baton.Busy).
func (c Code) Error() string { return c.String() }

// Error is a failure reported by libbaton (or by this package before it
// calls libbaton): a Code and a message with context.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "baton: " + e.Code.String()
	}
	return "baton: " + e.Message + " (" + e.Code.String() + ")"
}

// Is reports whether target is e's Code, or an *Error with the same Code
// (its message is not compared).
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return e.Code == t.Code
	}
	return false
}

// Errorf returns an *Error with code and a formatted message. A hook that
// returns one fails with that code; any other error fails with Internal.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// codeOf is the code a hook's error is reported with.
func codeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) && e.Code != OK {
		return e.Code
	}
	var c Code
	if errors.As(err, &c) && c != OK {
		return c
	}
	return Internal
}

// takeError turns a C status and its baton_error into a Go error (nil for
// BATON_OK) and frees the C error.
func takeError(rc C.int, cerr *C.baton_error) error {
	defer C.baton_error_free(cerr)
	if rc == C.BATON_OK {
		return nil
	}
	e := &Error{Code: Code(rc)}
	if cerr != nil {
		e.Code = Code(C.baton_error_code(cerr))
		e.Message = C.GoString(C.baton_error_message(cerr))
	}
	return e
}

// free releases a C string made by C.CString.
func free(p *C.char) { C.free(unsafe.Pointer(p)) }
