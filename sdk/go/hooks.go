package baton

// #include <stdlib.h>
// #include <baton/baton.h>
import "C"

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Hooks are the daemon's part of a handoff. libbaton calls them one at a
// time, never two at once, each on a goroutine of its own (a library
// thread, entered through cgo); a hook may block as long as it needs, the
// library keeps heartbeating meanwhile. A hook that returns an error rolls
// the handoff back; the error's text reaches `baton upgrade`'s output and
// its code is that of an *Error (see Errorf), else Internal. A hook that
// panics fails with Internal; the panic does not cross into C. Hooks must
// not call Start, Wait or Close.
type Hooks interface {
	// Warm runs in the successor before the incumbent is touched: slow
	// start-up that needs no ownership (open caches, read-only replay of
	// the data dir).
	Warm(ctx context.Context) error
	// Drain runs in the incumbent: stop accepting, finish in-flight
	// requests, close keep-alive connections at response boundaries, make
	// every acknowledged write durable, all by ctx's deadline (no deadline:
	// none was set). Keep the inherited listening fds open; closing the
	// net.Listener of Daemon.Listener is fine, it holds a dup.
	Drain(ctx context.Context) error
	// Seal runs in the incumbent: flush and close the writer, report the
	// last durable revision and a fingerprint of the state at it (printable
	// ASCII, at most 1024 bytes). Once it returns nil the library releases
	// the data-dir lock: no write may happen after. If the writer failed
	// earlier, report the last durable revision.
	Seal() (SealReport, error)
	// Begin runs in the successor, which now holds the data-dir lock:
	// replay the tail, check sealed (an error rolls back), open the writer,
	// start accepting.
	Begin(ctx context.Context, sealed SealedState) error
	// Resume runs in the incumbent after a rollback, the lock re-taken:
	// accept and write again. dataChanged: another process owned the data
	// meanwhile; reload it from disk rather than trusting memory.
	Resume(dataChanged bool) error
	// Retire runs in the incumbent after the commit: stop serving. Wait
	// returns after it did; the process should then exit with Wait's code.
	Retire()
}

// SealReport is what Seal reports.
type SealReport struct {
	Revision    uint64 // the last durable revision
	Fingerprint string // a digest of the state at Revision
}

// SealedState is what the incumbent sealed, given to the successor's Begin.
type SealedState struct {
	Sealed         bool   // false: the incumbent died before sealing; recover from disk
	Revision       uint64 // the incumbent's last durable revision
	Fingerprint    string // its digest of the state at Revision
	DataGeneration uint64 // bumped by the library for this owner
	LeaseEpoch     uint64 // the lease epoch handed over (0: no lease)
}

// hookState is what the cgo.Handle given to C as the hooks' user pointer
// refers to.
type hookState struct {
	hooks Hooks

	mu          sync.Mutex
	fingerprint *C.char // the last seal's, which C reads after the hook returned
}

func (s *hookState) setFingerprint(fp *C.char) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fingerprint != nil {
		free(s.fingerprint)
	}
	s.fingerprint = fp
}

func (s *hookState) release() { s.setFingerprint(nil) }

func stateOf(h C.uintptr_t) *hookState { return cgo.Handle(h).Value().(*hookState) }

// run calls a hook and turns its error or panic into a status for C.
func run(ctx *C.baton_hook_ctx, name string, hook func() error) (rc C.int) {
	fail := func(code Code, msg string) C.int {
		cmsg := C.CString(msg)
		defer free(cmsg)
		return C.baton_hook_fail(ctx, C.int(code), cmsg)
	}
	defer func() {
		if p := recover(); p != nil {
			rc = fail(Internal, fmt.Sprintf("%s: panic: %v", name, p))
		}
	}()
	if err := hook(); err != nil {
		msg := err.Error()
		if e, ok := err.(*Error); ok {
			msg = e.Message // not "baton: ... (code)": the code travels apart
		}
		return fail(codeOf(err), msg)
	}
	return C.BATON_OK
}

//export batonGoWarm
func batonGoWarm(h C.uintptr_t, ctx *C.baton_hook_ctx) C.int {
	s := stateOf(h)
	return run(ctx, "warm", func() error { return s.hooks.Warm(context.Background()) })
}

//export batonGoDrain
func batonGoDrain(h C.uintptr_t, remainingNs C.int64_t, ctx *C.baton_hook_ctx) C.int {
	s := stateOf(h)
	return run(ctx, "drain", func() error {
		c := context.Background()
		if remainingNs != math.MaxInt64 {
			var cancel context.CancelFunc
			c, cancel = context.WithTimeout(c, time.Duration(remainingNs))
			defer cancel()
		}
		return s.hooks.Drain(c)
	})
}

//export batonGoSeal
func batonGoSeal(h C.uintptr_t, report *C.baton_seal_report, ctx *C.baton_hook_ctx) C.int {
	s := stateOf(h)
	return run(ctx, "seal", func() error {
		r, err := s.hooks.Seal()
		// Reported even on failure: the last durable revision.
		fp := C.CString(r.Fingerprint)
		s.setFingerprint(fp)
		report.revision = C.uint64_t(r.Revision)
		report.fingerprint = fp
		return err
	})
}

//export batonGoBegin
func batonGoBegin(h C.uintptr_t, sealed *C.baton_sealed_state, ctx *C.baton_hook_ctx) C.int {
	s := stateOf(h)
	st := sealedState(sealed)
	return run(ctx, "begin", func() error { return s.hooks.Begin(context.Background(), st) })
}

// sealedState copies the fields the library filled (it says how many with
// size).
func sealedState(c *C.baton_sealed_state) SealedState {
	has := func(offset, size uintptr) bool { return uintptr(c.size) >= offset+size }
	var st SealedState
	if has(unsafe.Offsetof(c.sealed), unsafe.Sizeof(c.sealed)) {
		st.Sealed = c.sealed != 0
	}
	if has(unsafe.Offsetof(c.revision), unsafe.Sizeof(c.revision)) {
		st.Revision = uint64(c.revision)
	}
	if has(unsafe.Offsetof(c.fingerprint), unsafe.Sizeof(c.fingerprint)) && c.fingerprint != nil {
		st.Fingerprint = C.GoString(c.fingerprint)
	}
	if has(unsafe.Offsetof(c.data_generation), unsafe.Sizeof(c.data_generation)) {
		st.DataGeneration = uint64(c.data_generation)
	}
	if has(unsafe.Offsetof(c.lease_epoch), unsafe.Sizeof(c.lease_epoch)) {
		st.LeaseEpoch = uint64(c.lease_epoch)
	}
	return st
}

//export batonGoResume
func batonGoResume(h C.uintptr_t, dataChanged C.int, ctx *C.baton_hook_ctx) C.int {
	s := stateOf(h)
	return run(ctx, "resume", func() error { return s.hooks.Resume(dataChanged != 0) })
}

//export batonGoRetire
func batonGoRetire(h C.uintptr_t) {
	s := stateOf(h)
	defer func() {
		// Retire cannot fail; a panic must still not unwind into C.
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "baton: retire hook panicked: %v\n", p)
		}
	}()
	s.hooks.Retire()
}

//export batonGoLog
func batonGoLog(h C.uintptr_t, level C.int, event, message, json *C.char) {
	log := cgo.Handle(h).Value().(func(Level, string, string, string))
	log(Level(level), C.GoString(event), C.GoString(message), C.GoString(json))
}
