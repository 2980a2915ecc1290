// Handoverprobe is a daemon that serves nothing, for the Go SDK's handover
// tests (tests/sdk/handover_test.cc): it hands over socket pairs and a state
// in its Drain and Seal hooks and records what it receives in Begin and
// Resume. The Rust and Python SDKs have the same probe, trace for trace.
//
//	handoverprobe DIR
//
// Every generation appends lines "<pid> <what>" to DIR/trace. DIR/handover
// "N S", if present: Drain makes N connected socket pairs, writes
// "ping-<pid>-I" into one end, reads it from the other (bytes read but not
// processed) and hands that end over as connection "conn-I" with them as
// metadata, and the first end as file "peer-I"; Seal sets a state of S
// bytes starting "state-<pid>". Begin and Resume take what was handed over,
// write "pong-<pid>-I" into each peer and trace what its connection reads,
// then close them. DIR/fail-begin makes Begin fail with its contents.
// Every generation accepts a handover (AcceptHandover) unless DIR/no-accept
// exists when it starts; Drain traces whether the successor accepts, and
// when it does not, that a hand-over is refused. SIGTERM asks for exit 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	baton "baton/sdk/go"
	"baton/sdk/go/internal/probeutil"
)

var dir string

func trace(format string, args ...any) {
	line := fmt.Sprintf("%d %s\n", os.Getpid(), fmt.Sprintf(format, args...))
	f, err := os.OpenFile(dir+"/trace", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line) // one write: generations append concurrently
}

// knob is DIR/name without its trailing newlines, and whether it exists.
func knob(name string) (string, bool) {
	b, err := os.ReadFile(dir + "/" + name)
	return strings.TrimRight(string(b), "\n"), err == nil
}

type probe struct{ d *baton.Daemon }

func (p *probe) Warm(context.Context) error { trace("warm"); return nil }

func (p *probe) Drain(context.Context) error {
	trace("drain")
	spec, ok := knob("handover")
	if !ok {
		return nil
	}
	accepts := p.d.SuccessorAcceptsHandover()
	trace("successor_accepts=%d", b2i(accepts))
	if !accepts {
		// Refused (FailedPrecondition), and still ours.
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer syscall.Close(fds[0])
		defer syscall.Close(fds[1])
		refused := p.d.HandOverFD(baton.HandoverConnection, "conn-0", fds[1], nil)
		trace("refused_unaccepted=%d open=%d", probeutil.Code(refused), b2i(fdOpen(fds[1])))
		return nil
	}
	n, _ := strconv.Atoi(strings.Fields(spec)[0])
	for i := 0; i < n; i++ {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		peer, end := os.NewFile(uintptr(fds[0]), "peer"), os.NewFile(uintptr(fds[1]), "conn")
		conn, err := net.FileConn(end) // a *net.UnixConn: the usual case
		end.Close()
		if err != nil {
			return err
		}
		ping := fmt.Sprintf("ping-%d-%d", os.Getpid(), i)
		if _, err := peer.WriteString(ping); err != nil {
			return err
		}
		unread := make([]byte, len(ping))
		if _, err := conn.Read(unread); err != nil {
			return err
		}
		name := fmt.Sprintf("conn-%d", i)
		if err := p.d.HandOver(baton.HandoverConnection, name, conn.(*net.UnixConn), unread); err != nil {
			trace("hand over conn-%d failed %d %v", i, probeutil.Code(err), err)
			return err
		}
		_, werr := conn.Write([]byte("x"))
		trace("handed conn-%d closed=%d", i, b2i(errors.Is(werr, net.ErrClosed)))
		if err := p.d.HandOver(baton.HandoverFile, fmt.Sprintf("peer-%d", i), peer, nil); err != nil {
			trace("hand over peer-%d failed %d %v", i, probeutil.Code(err), err)
			return err
		}
	}
	// A pipe is no connection, and a name goes once: refused, still ours.
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	defer w.Close()
	bad := p.d.HandOver(baton.HandoverConnection, "pipe", r, nil)
	twice := p.d.HandOver(baton.HandoverFile, "peer-0", r, nil)
	_, werr := w.WriteString("still open")
	buf := make([]byte, 16)
	_, rerr := r.Read(buf)
	trace("refused pipe=%d twice=%d open=%d", probeutil.Code(bad), probeutil.Code(twice), b2i(werr == nil && rerr == nil))
	return nil
}

func (p *probe) Seal() (baton.SealReport, error) {
	trace("seal")
	if spec, ok := knob("handover"); ok {
		f := strings.Fields(spec)
		size, _ := strconv.Atoi(f[len(f)-1])
		state := []byte(strings.Repeat("x", size))
		copy(state, fmt.Sprintf("state-%d", os.Getpid()))
		if !p.d.SuccessorAcceptsHandover() {
			// Refused (FailedPrecondition): the seal goes on without it.
			trace("state_unaccepted=%d", probeutil.Code(p.d.SetHandoverState(state)))
		} else if err := p.d.SetHandoverState(state); err != nil {
			trace("set state failed %d %v", probeutil.Code(err), err)
			return baton.SealReport{}, err
		}
	}
	return baton.SealReport{Revision: 1, Fingerprint: "probe"}, nil
}

// takeAll traces what was handed over, checks that each connection works,
// then closes everything.
func (p *probe) takeAll(hook string) {
	handed, err := p.d.TakeHandedOver()
	if err != nil {
		trace("%s take failed %d %v", hook, probeutil.Code(err), err)
	}
	sort.Slice(handed, func(i, j int) bool { return handed[i].Name < handed[j].Name })
	byName := map[string]*baton.Handed{}
	for i := range handed {
		byName[handed[i].Name] = &handed[i]
	}
	for i := range handed {
		h := &handed[i]
		read := ""
		if h.Kind == baton.HandoverConnection {
			read = p.pingPong(byName, h) // closes h.File
		}
		trace("%s handed %s kind=%d meta=%s read=%s", hook, h.Name, int(h.Kind), h.Metadata, read)
	}
	for _, h := range handed {
		h.File.Close() // a second Close of a connection's File is a harmless error
	}
	state, err := p.d.TakeHandoverState()
	switch {
	case err != nil:
		trace("%s state failed %d %v", hook, probeutil.Code(err), err)
	case state == nil:
		trace("%s state none", hook)
	default:
		trace("%s state len=%d head=%s", hook, len(state), state[:min(32, len(state))])
	}
}

// pingPong writes "pong-<pid>-I" into the peer of connection h ("conn-I")
// and returns what h reads, through the net.Conn of Handed.Conn.
func (p *probe) pingPong(byName map[string]*baton.Handed, h *baton.Handed) string {
	i := strings.TrimPrefix(h.Name, "conn-")
	peer := byName["peer-"+i]
	if peer == nil {
		return "no-peer"
	}
	conn, err := h.Conn()
	if err != nil {
		return "conn-failed"
	}
	defer conn.Close()
	pong := fmt.Sprintf("pong-%d-%s", os.Getpid(), i)
	if _, err := peer.File.WriteString(pong); err != nil {
		return "write-failed"
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, len(pong))
	n := 0
	for n < len(got) {
		m, err := conn.Read(got[n:])
		if err != nil {
			return "read-failed"
		}
		n += m
	}
	return string(got)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func (p *probe) Begin(_ context.Context, _ baton.SealedState) error {
	trace("begin")
	p.takeAll("begin")
	if msg, ok := knob("fail-begin"); ok {
		return baton.Errorf(baton.Internal, "%s", msg)
	}
	return nil
}

func (p *probe) Resume(bool) error {
	trace("resume")
	p.takeAll("resume")
	return nil
}

func (p *probe) Retire() { trace("retire") }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: handoverprobe DIR")
		os.Exit(2)
	}
	dir = os.Args[1]
	d, err := baton.New(baton.Options{BuildID: "go-handover-probe"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "handoverprobe:", err)
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	go func() { <-sigs; d.RequestExit(0) }()
	if _, no := knob("no-accept"); !no {
		if err := d.AcceptHandover(); err != nil {
			fmt.Fprintln(os.Stderr, "handoverprobe:", err)
			os.Exit(2)
		}
	}
	if err := d.Start(&probe{d: d}); err != nil {
		trace("start failed %d %v", probeutil.Code(err), err)
		d.Close()
		os.Exit(1)
	}
	// Outside Drain and Seal nothing may be handed over.
	trace("outside=%d", probeutil.Code(d.HandOverFD(baton.HandoverFile, "x", 0, nil)))
	// Accepting is said before the Hello, or not at all.
	trace("accept_after_start=%d", probeutil.Code(d.AcceptHandover()))
	trace("serving")
	code, _ := d.Wait()
	trace("exit %d", code)
	d.Close()
	os.Exit(code)
}

// fdOpen says whether fd is an open descriptor (fcntl F_GETFD succeeds).
func fdOpen(fd int) bool {
	_, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	return errno == 0
}
