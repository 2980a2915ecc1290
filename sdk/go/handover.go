package baton

// #include <stdlib.h>
// #include <baton/baton.h>
import "C"

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// HandoverKind says what a handed-over descriptor is.
type HandoverKind int

const (
	// HandoverConnection is a connected stream socket (the library checks).
	HandoverConnection HandoverKind = C.BATON_HANDOVER_CONNECTION
	// HandoverFile is any other descriptor, unchecked.
	HandoverFile HandoverKind = C.BATON_HANDOVER_FILE
)

func (k HandoverKind) String() string {
	switch k {
	case HandoverConnection:
		return "connection"
	case HandoverFile:
		return "file"
	}
	return "unknown"
}

// Handed is one descriptor handed over: in the successor the incumbent's,
// in the incumbent after a rollback its own, back.
type Handed struct {
	Name     string       // as given to HandOver
	Kind     HandoverKind // as given to HandOver
	Metadata []byte       // as given to HandOver (nil when there was none)
	// File holds the descriptor (close-on-exec), owned by the caller: close
	// it, or turn it into a net.Conn with Conn. Its O_NONBLOCK flag is the
	// handing process's (the open file description is shared).
	File *os.File
}

// Conn turns a handed-over connection into a net.Conn (net.FileConn, which
// dups the descriptor) and closes File: from then on the net.Conn is the
// only owner. On error File is left open.
func (h *Handed) Conn() (net.Conn, error) {
	c, err := net.FileConn(h.File)
	if err != nil {
		return nil, Errorf(InvalidArgument, "handed-over %q: %v", h.Name, err)
	}
	h.File.Close()
	return c, nil
}

// HandOver hands the descriptor of c to the successor under name (unique in
// the handoff) with metadata (at most 256 KiB, copied), e.g. the bytes read
// from a connection but not yet processed. c is a *net.TCPConn, a
// *net.UnixConn, an *os.File, or anything else whose SyscallConn reaches a
// descriptor. Only from inside the Drain or Seal hook (any goroutine, while
// the hook runs), and only once the daemon stopped using c: no goroutine
// may still read or write it.
//
// Ownership is exact: on success the library owns the descriptor and c is
// closed (if it is an io.Closer; the socket stays open for the successor);
// on error c is untouched and still the caller's (close it: the client sees
// a close, as without handover). The library receives a close-on-exec dup of
// c's descriptor, so c's own is never in two hands.
//
// Ask SuccessorAcceptsHandover first: a successor that did not call
// AcceptHandover is handed nothing.
//
// Errors: FailedPrecondition (not inside Drain or Seal, the successor does
// not accept handed-over descriptors, or over the per-handoff maximum), InvalidArgument (an empty name, a bad kind, a
// "connection" that is no connected stream socket, too much metadata), and
// IOError if c's descriptor cannot be reached or duplicated. Until the
// commit the descriptor stays this process's: a rollback gives it back in
// Resume (TakeHandedOver).
func (d *Daemon) HandOver(kind HandoverKind, name string, c syscall.Conn, metadata []byte) error {
	if c == nil {
		return Errorf(InvalidArgument, "hand over %q: no connection or file", name)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return Errorf(IOError, "hand over %q: %v", name, err)
	}
	// Dup inside Control: the descriptor is valid for the call, and Fd()
	// (which would switch an *os.File to blocking mode) is not needed.
	dup, dupErr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { dup, dupErr = dupCloexec(int(fd)) }); err != nil {
		return Errorf(IOError, "hand over %q: %v", name, err)
	}
	if dupErr != nil {
		return Errorf(IOError, "hand over %q: dup: %v", name, dupErr)
	}
	if err := d.handOverFD(kind, name, dup, metadata); err != nil {
		syscall.Close(dup)
		return err
	}
	if closer, ok := c.(io.Closer); ok {
		closer.Close()
	}
	return nil
}

// HandOverFD is HandOver for a bare descriptor: on success the library owns
// fd (stop using it at once, do not close it); on error the caller still
// does.
func (d *Daemon) HandOverFD(kind HandoverKind, name string, fd int, metadata []byte) error {
	return d.handOverFD(kind, name, fd, metadata)
}

func (d *Daemon) handOverFD(kind HandoverKind, name string, fd int, metadata []byte) error {
	cname := C.CString(name)
	defer free(cname)
	// A Go pointer to bytes without Go pointers, for the call only: the
	// library copies them before it returns (the cgo rules allow it).
	var meta unsafe.Pointer
	if len(metadata) > 0 {
		meta = unsafe.Pointer(&metadata[0])
	}
	var cerr *C.baton_error
	return takeError(C.baton_hand_over(d.c, C.int(kind), cname, C.int(fd), meta, C.size_t(len(metadata)), &cerr),
		cerr)
}

// SetHandoverState makes state (any size; copied into a sealed memfd) the
// successor's handover state; a second call replaces the first. Only from
// inside the Drain or Seal hook (FailedPrecondition otherwise). The state is
// not durable: a rollback gives it back to Resume, a crash loses it.
//
// It fails like HandOver when the successor does not accept a handover.
func (d *Daemon) SetHandoverState(state []byte) error {
	var p unsafe.Pointer
	if len(state) > 0 {
		p = unsafe.Pointer(&state[0]) // copied before the call returns, as in handOverFD
	}
	var cerr *C.baton_error
	return takeError(C.baton_set_handover_state(d.c, p, C.size_t(len(state)), &cerr), cerr)
}

// TakeHandedOver returns every descriptor handed over and not taken yet:
// in the successor from its Begin hook on (the incumbent's), in the
// incumbent from its Resume hook on after a rollback (its own, back). Serve
// a successor's only once Start returned: until then a rollback gives them
// back to the incumbent, which must find their requests unread. None left:
// an empty slice. Each Handed's File is the caller's to close. On error the
// ones taken before it are returned with it. Any goroutine.
func (d *Daemon) TakeHandedOver() ([]Handed, error) {
	var out []Handed
	for {
		var h *C.baton_handed_fd
		var cerr *C.baton_error
		if err := takeError(C.baton_take_handed_over(d.c, &h, &cerr), cerr); err != nil {
			return out, err
		}
		if h == nil {
			return out, nil
		}
		var n C.size_t
		meta := C.baton_handed_fd_metadata(h, &n)
		handed := Handed{Name: C.GoString(C.baton_handed_fd_name(h)), Kind: HandoverKind(C.baton_handed_fd_kind(h))}
		if n > 0 {
			handed.Metadata = C.GoBytes(meta, C.int(n))
		}
		// The descriptor is ours from the take on; freeing h does not close it.
		handed.File = os.NewFile(uintptr(C.baton_handed_fd_fd(h)), handed.Name)
		C.baton_handed_fd_free(h)
		out = append(out, handed)
	}
}

// TakeHandoverState returns the handover state (see TakeHandedOver for
// when), once: nil when there is none or it was taken, a non-nil empty
// slice for an empty state. Any goroutine.
func (d *Daemon) TakeHandoverState() ([]byte, error) {
	var data unsafe.Pointer
	var n C.size_t
	var cerr *C.baton_error
	if err := takeError(C.baton_take_handover_state(d.c, &data, &n, &cerr), cerr); err != nil {
		return nil, err
	}
	if data == nil {
		return nil, nil
	}
	defer C.baton_free(data)
	// Copied by hand: C.GoBytes takes an int32 length, a state may be larger.
	out := make([]byte, int(n))
	copy(out, unsafe.Slice((*byte)(data), int(n)))
	return out, nil
}

// AcceptHandover says that this daemon's Begin hook takes what an incumbent
// hands over (TakeHandedOver, TakeHandoverState). Call it before Start, from
// the goroutine that calls Start. The successor's Hello carries it to the
// supervisor, which tells the incumbent: a generation that does not call it
// is never handed anything, so its incumbent closes its connections politely
// instead of leaving them to a process that would never serve them.
// FailedPrecondition after Start.
func (d *Daemon) AcceptHandover() error {
	var cerr *C.baton_error
	return takeError(C.baton_accept_handover(d.c, &cerr), cerr)
}

// SuccessorAcceptsHandover reports, inside the Drain or Seal hook, whether
// this handoff's successor called AcceptHandover. When it is false (also
// outside a handoff, and with a successor or supervisor older than ABI 1.3)
// drain without handing over: HandOver would fail. Any goroutine.
func (d *Daemon) SuccessorAcceptsHandover() bool {
	return C.baton_successor_accepts_handover(d.c) != 0
}
