// Package baton makes a Go daemon upgradable in place by `baton
// supervise`: the supervisor starts a successor binary, which warms up
// while the running generation (the incumbent) serves, then the incumbent
// drains and seals its data and the successor begins serving from it, and
// any failure rolls back to the incumbent. The package is a thin cgo layer
// over libbaton's C ABI (baton/baton.h), found with pkg-config (baton.pc).
//
// # Life cycle
//
// New reads the supervisor's environment contract; Daemon.Listener gives
// an inherited listening socket as a net.Listener, Daemon.PacketConn a
// `udp://` listener (a bound datagram socket) as a net.PacketConn, each
// holding a dup of the inherited fd; Daemon.Start takes part
// in the handoff (a successor's Warm and Begin hooks run inside it) or, on
// a cold start, takes the data-dir lock; Daemon.Wait returns once this
// generation must exit, with the exit code; Daemon.Close frees the rest.
// Without a supervisor the daemon runs standalone: Start takes the lock and
// no hook is ever called.
//
// # Hooks
//
// The daemon's part of a handoff is the Hooks interface: Warm, Drain (with
// the deadline in its context), Seal (returning a SealReport), Begin (with
// the SealedState), Resume and Retire. libbaton calls them one at a time
// on threads of its own; cgo runs each on a goroutine, so they may use
// channels, contexts and net/http freely. A returned error rolls the
// handoff back and its text reaches `baton upgrade`'s output.
//
// # Handing over connections
//
// Instead of closing its connections in Drain, the incumbent can hand them
// to the successor with Daemon.HandOver (and a state blob with
// Daemon.SetHandoverState); the successor takes them from Begin on with
// Daemon.TakeHandedOver and Daemon.TakeHandoverState, and after a rollback
// the incumbent takes its own back the same way in Resume. HandOver gives
// the library a dup of the connection's descriptor and closes the
// connection only on success. A successor is handed anything only if it
// called Daemon.AcceptHandover before Start; in Drain, the incumbent asks
// Daemon.SuccessorAcceptsHandover and, when it is false, closes its
// connections as without handover.
//
// # Errors
//
// Every failure is an *Error with a Code, the numbers of the C ABI's
// baton_errc. errors.Is(err, baton.NotFound) tests the code through any
// wrapping; Errorf makes one (a hook's error without a Code fails with
// Internal).
//
// # cgo pointer rules
//
// C never keeps a Go pointer: the hooks' and the log callback's user
// pointer is a runtime/cgo.Handle (an integer) that C trampolines hand back
// to exported Go functions; structs passed to C hold no Go pointers;
// strings are copied to C memory and freed after the call, except the
// seal's fingerprint, which libbaton reads after the hook returned and the
// package frees at the next seal or at Close. Close deletes the handles
// after libbaton has stopped calling them.
//
// The sdk/go/examples/gokvd directory holds a complete daemon to copy,
// docs/sdk-go.md the guide.
package baton
