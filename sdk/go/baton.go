package baton

// #cgo pkg-config: baton
// #include <stdlib.h>
// #include <baton/baton.h>
// void batongo_fill_hooks(baton_hooks* h, uintptr_t handle);
// void batongo_set_log(baton_options* o, uintptr_t handle);
import "C"

import (
	"fmt"
	"net"
	"os"
	"runtime/cgo"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Role says who started this process.
type Role int

const (
	Standalone Role = C.BATON_ROLE_STANDALONE // no supervisor: the daemon just runs
	ColdStart  Role = C.BATON_ROLE_COLD_START // started by the supervisor, first of its line (or a restart)
	Successor  Role = C.BATON_ROLE_SUCCESSOR  // started by the supervisor for a handoff
)

func (r Role) String() string {
	switch r {
	case Standalone:
		return "standalone"
	case ColdStart:
		return "cold start"
	case Successor:
		return "successor"
	}
	return "unknown"
}

// Level is the severity of a library event.
type Level int

const (
	LevelDebug Level = C.BATON_LEVEL_DEBUG
	LevelInfo  Level = C.BATON_LEVEL_INFO
	LevelWarn  Level = C.BATON_LEVEL_WARN
	LevelError Level = C.BATON_LEVEL_ERROR
)

// Options configure New. The zero value is valid when $BATON_DATA_DIR is set.
type Options struct {
	BuildID string // shown by `baton status`
	// The on-disk state formats this build reads and writes, 0 and 0
	// meaning 1..1. Give each format its own number: a successor whose
	// range does not overlap the incumbent's is refused at Hello
	// (`baton upgrade` exits 4) before the incumbent is touched.
	StateSchemaMin uint32
	StateSchemaMax uint32
	DataDir        string // "": $BATON_DATA_DIR; one of them is required

	// Log receives the library's events: a dotted stable name
	// ("handoff.phase"), human text and the whole event as one JSON
	// object. Called from several library threads, possibly at once: it
	// must be safe for concurrent use, quick, and must not call the
	// Daemon's methods. nil: JSON lines on stderr.
	Log func(level Level, event, message, json string)

	// A Postgres leader lease held while serving and handed over inside
	// Seal. LeaseName "": no lease.
	LeaseName          string
	LeaseDSN           string        // "": $BATON_LEASE_DSN, then libpq's PG* variables
	LeaseHolderID      string        // "": generated, unique per process
	LeaseTTL           time.Duration // 0: 10 s
	LeaseRenewInterval time.Duration // 0: TTL / 3
	LeaseOpTimeout     time.Duration // 0: 1 s
	LeasePollInterval  time.Duration // 0: TTL / 4
}

// Daemon is one generation of a daemon. Its methods are safe for
// concurrent use, except that New, Start and Close must not run at the
// same time as each other.
type Daemon struct {
	c *C.baton_daemon

	mu     sync.Mutex
	hooks  cgo.Handle // 0 until Start; deleted by Close
	log    cgo.Handle // 0 without Options.Log
	closed bool
}

// The supervisor's environment contract, which New removes from the process.
var contractVariables = []string{"LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "BATON_CONTROL_FD", "BATON_ROLE"}

// New reads and removes the supervisor's environment contract (LISTEN_FDS,
// BATON_CONTROL_FD, BATON_ROLE, ...) and arms BATON_CRASH_AT. Call it once
// per process, early in main. Errors: InvalidArgument (no data dir, an
// empty schema range, bad lease settings), FailedPrecondition (a lease
// whose libpq cannot be loaded), and whatever is wrong with the
// environment. Free the Daemon with Close.
func New(opts Options) (*Daemon, error) {
	if opts.StateSchemaMin > opts.StateSchemaMax {
		return nil, Errorf(InvalidArgument, "state schema range [%d,%d] is empty", opts.StateSchemaMin,
			opts.StateSchemaMax)
	}
	for _, d := range []time.Duration{opts.LeaseTTL, opts.LeaseRenewInterval, opts.LeaseOpTimeout, opts.LeasePollInterval} {
		if d < 0 {
			return nil, Errorf(InvalidArgument, "lease durations must not be negative (got %v)", d)
		}
	}
	var strs []*C.char
	cstr := func(s string) *C.char {
		if s == "" {
			return nil
		}
		p := C.CString(s)
		strs = append(strs, p)
		return p
	}
	defer func() {
		for _, p := range strs {
			free(p)
		}
	}()
	o := C.baton_options{
		size:                    C.sizeof_baton_options,
		build_id:                cstr(opts.BuildID),
		state_schema_min:        C.uint32_t(opts.StateSchemaMin),
		state_schema_max:        C.uint32_t(opts.StateSchemaMax),
		data_dir:                cstr(opts.DataDir),
		lease_name:              cstr(opts.LeaseName),
		lease_dsn:               cstr(opts.LeaseDSN),
		lease_holder_id:         cstr(opts.LeaseHolderID),
		lease_ttl_ms:            C.int64_t(opts.LeaseTTL.Milliseconds()),
		lease_renew_interval_ms: C.int64_t(opts.LeaseRenewInterval.Milliseconds()),
		lease_op_timeout_ms:     C.int64_t(opts.LeaseOpTimeout.Milliseconds()),
		lease_poll_interval_ms:  C.int64_t(opts.LeasePollInterval.Milliseconds()),
	}
	d := &Daemon{}
	if opts.Log != nil {
		d.log = cgo.NewHandle(opts.Log)
		C.batongo_set_log(&o, C.uintptr_t(d.log))
	}
	var cerr *C.baton_error
	if err := takeError(C.baton_create(&o, &d.c, &cerr), cerr); err != nil {
		if d.log != 0 {
			d.log.Delete()
		}
		return nil, err
	}
	// libbaton removed the contract from the C environment; Go keeps a copy
	// of its own, which children started with os/exec would inherit.
	for _, v := range contractVariables {
		os.Unsetenv(v)
	}
	return d, nil
}

// Role says who started this process.
func (d *Daemon) Role() Role {
	var r C.int
	C.baton_role(d.c, &r, nil)
	return Role(r)
}

// DataDir is the data dir in use.
func (d *Daemon) DataDir() string {
	var dir *C.char
	C.baton_data_dir(d.c, &dir, nil)
	return C.GoString(dir)
}

// ListenerNames are the names of the inherited listeners, in order.
func (d *Daemon) ListenerNames() []string {
	var n C.size_t
	C.baton_listener_count(d.c, &n, nil)
	names := make([]string, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		var name *C.char
		var fd C.int
		if C.baton_listener_at(d.c, i, &name, &fd, nil) == C.BATON_OK {
			names = append(names, C.GoString(name))
		}
	}
	return names
}

// Listener returns the inherited listening socket called name as a
// net.Listener (NotFound if there is none: e.g. standalone, where the
// daemon listens by itself). A `udp://` listener is a datagram socket, no
// net.Listener: InvalidArgument, take it with PacketConn.
//
// The listener holds a duplicate of the inherited fd (net.FileListener
// dups it), so closing it, as http.Server.Shutdown does in a drain, leaves
// the inherited fd open: the listening socket itself stays open, as baton
// requires across a drain, and a successor or a resume finds it unchanged.
// Call Listener again for a new one after a rollback.
func (d *Daemon) Listener(name string) (net.Listener, error) {
	f, err := d.listenerFile(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, Errorf(InvalidArgument, "listener %q: %v", name, err)
	}
	return l, nil
}

// PacketConn returns the inherited `udp://` listener called name, a bound
// datagram socket, as a net.PacketConn (a *net.UDPConn): ReadFrom and
// WriteTo, no Accept. NotFound if there is none (e.g. standalone, where the
// daemon binds by itself); InvalidArgument for a stream listener (`tcp://`,
// `unix:`), which Listener gives.
//
// The PacketConn holds a duplicate of the inherited fd, so closing it in a
// drain leaves the inherited fd open: the socket itself stays bound, as
// baton requires across a drain, and datagrams not yet read stay queued on
// it for the successor (or for a resume). Call PacketConn again for a new
// one after a rollback. The socket's file status flags are shared with the
// supervisor and the other generation (Go makes it non-blocking).
func (d *Daemon) PacketConn(name string) (net.PacketConn, error) {
	f, err := d.listenerFile(name, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, Errorf(InvalidArgument, "listener %q: %v", name, err)
	}
	return c, nil
}

// listenerFile is a dup of the inherited listener called name, checked to
// be a datagram socket (datagram) or not one (!datagram), as an *os.File
// for the caller to close.
func (d *Daemon) listenerFile(name string, datagram bool) (*os.File, error) {
	if name == "" {
		return nil, Errorf(InvalidArgument, "a listener name must not be empty")
	}
	fd, err := d.ListenerFD(name)
	if err != nil {
		return nil, err
	}
	if err := checkListenerType(name, fd, datagram); err != nil {
		return nil, err
	}
	dup, err := dupCloexec(fd)
	if err != nil {
		return nil, Errorf(IOError, "listener %q: dup fd %d: %v", name, fd, err)
	}
	return os.NewFile(uintptr(dup), name), nil
}

// checkListenerType says whether fd, the listener called name, is a
// datagram socket (datagram) or not one (!datagram): if not,
// InvalidArgument saying what it is and which helper fits.
func checkListenerType(name string, fd int, datagram bool) error {
	typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE)
	if err != nil {
		return Errorf(IOError, "listener %q: SO_TYPE of fd %d: %v", name, fd, err)
	}
	switch {
	case datagram && typ != syscall.SOCK_DGRAM:
		return Errorf(InvalidArgument, "listener %q is a %s, not a datagram socket (udp://): use Listener",
			name, socketTypeName(typ))
	case !datagram && typ == syscall.SOCK_DGRAM:
		return Errorf(InvalidArgument, "listener %q is a datagram socket (udp://), not a stream listener: "+
			"use PacketConn", name)
	}
	return nil
}

func socketTypeName(typ int) string {
	switch typ {
	case syscall.SOCK_STREAM:
		return "stream listener (tcp:// or unix:)"
	case syscall.SOCK_SEQPACKET:
		return "seqpacket listener"
	}
	return fmt.Sprintf("socket of type %d", typ)
}

// ListenerFD returns the inherited listener called name (a listening
// socket, or for `udp://` a bound datagram socket) as the fd itself: owned
// by the library until Start returns, then by the process.
// Do not close it while the daemon runs (the supervisor keeps its own copy
// for the successor, but a drain must leave the socket listening).
func (d *Daemon) ListenerFD(name string) (int, error) {
	cname := C.CString(name)
	defer free(cname)
	var fd C.int
	var cerr *C.baton_error
	if err := takeError(C.baton_listener(d.c, cname, &fd, &cerr), cerr); err != nil {
		return -1, err
	}
	return int(fd), nil
}

func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// Start starts this generation. Cold start or standalone: takes the
// data-dir lock (FailedPrecondition if another process holds it) and
// campaigns for the lease if any; no hook is called. Successor: takes part
// in the handoff, and Warm and Begin run from here. Returns once the daemon
// may serve (successor: after Begin succeeded); a successor gets Aborted if
// the handoff rolled back or RequestExit was called meanwhile. Blocks.
// Call it once (FailedPrecondition the second time); hooks must not be nil.
func (d *Daemon) Start(hooks Hooks) error {
	if hooks == nil {
		return Errorf(InvalidArgument, "Start needs hooks")
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return Errorf(FailedPrecondition, "the daemon is closed")
	}
	if d.hooks != 0 {
		d.mu.Unlock()
		return Errorf(FailedPrecondition, "Start was already called")
	}
	// The handle, not a Go pointer, is what C keeps as the hooks' user
	// pointer; it stays valid until Close.
	d.hooks = cgo.NewHandle(&hookState{hooks: hooks})
	h := d.hooks
	d.mu.Unlock()
	var ch C.baton_hooks
	C.batongo_fill_hooks(&ch, C.uintptr_t(h))
	var cerr *C.baton_error
	return takeError(C.baton_start(d.c, &ch, &cerr), cerr)
}

// Wait blocks until this generation must exit: after Retire (committed
// away), when the supervisor is gone and the failure rules say so, or
// after RequestExit. It returns the code the process should exit with. It
// blocks an OS thread; call it from any goroutine, from several at once.
func (d *Daemon) Wait() (int, error) {
	var code C.int
	var cerr *C.baton_error
	if err := takeError(C.baton_wait_for_exit(d.c, &code, &cerr), cerr); err != nil {
		return 1, err
	}
	return int(code), nil
}

// RequestExit makes Wait return code (the first request wins), e.g. on
// SIGTERM; a Start still waiting fails with Aborted.
func (d *Daemon) RequestExit(code int) error {
	var cerr *C.baton_error
	return takeError(C.baton_request_exit(d.c, C.int(code), &cerr), cerr)
}

// ReportUnhealthy tells the supervisor this generation is not healthy,
// reason saying why. During the probation after an upgrade the supervisor
// reverts to the previous binary (a handoff); outside one it is an event.
// Returns once the report is queued. FailedPrecondition: standalone, not yet
// accepted by the supervisor (call it after Start), or a supervisor too old
// to take health reports. Safe from any goroutine.
func (d *Daemon) ReportUnhealthy(reason string) error {
	creason := C.CString(reason)
	defer C.free(unsafe.Pointer(creason))
	var cerr *C.baton_error
	return takeError(C.baton_report_unhealthy(d.c, creason, &cerr), cerr)
}

// LeaseEpoch is the lease epoch under which this process may act as leader
// right now, or 0 when it may not (or has no lease). Use it as the fencing
// token of your writes. Never blocks.
func (d *Daemon) LeaseEpoch() uint64 {
	var epoch C.uint64_t
	if C.baton_lease_epoch(d.c, &epoch, nil) != C.BATON_OK {
		return 0
	}
	return uint64(epoch)
}

// Close releases the data-dir lock and the lease if still held and stops
// the library's threads. Call it after Wait returned, after Start failed,
// or if Start was never called; never while a hook runs. Closing twice is
// fine.
func (d *Daemon) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	C.baton_destroy(d.c)
	d.c = nil
	if d.hooks != 0 {
		d.hooks.Value().(*hookState).release()
		d.hooks.Delete()
	}
	if d.log != 0 {
		d.log.Delete()
	}
}

// TestingCrashPoint ends the process like SIGKILL (exit code 86, after a
// marker line) if name is the armed crash point (BATON_CRASH_AT); otherwise
// it returns at once.
func TestingCrashPoint(name string) {
	cname := C.CString(name)
	defer free(cname)
	C.baton_testing_crash_point(cname)
}
