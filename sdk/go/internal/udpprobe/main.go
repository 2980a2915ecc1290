// Udpprobe is a daemon that echoes datagrams, for the Go SDK's UDP listener
// tests (tests/sdk/udp_test.cc): it serves its `udp://` listener through
// Daemon.PacketConn. The Rust SDK has the same probe, line for line.
//
//	udpprobe
//
// It needs two listeners, "udp" (udp://) and "http" (tcp://). Before Start
// it asks for each with the other kind's helper and writes to stderr
//
//	udp-probe <pid> stream on udp: code=<code> <error>
//	udp-probe <pid> datagram on http: code=<code> <error>
//
// Then, from Start (cold start) or Begin (successor) until Drain or
// Retire, and again after Resume, it answers every datagram on "udp" to
// its sender with "pid=<pid> " and the datagram, and every HTTP request on
// "http" with 200 "pid=<pid>". Drain closes both (duplicates: the sockets
// stay open for the successor) and writes "udp-probe <pid> drained".
// Standalone it exits 2; SIGTERM asks for exit 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	baton "baton/sdk/go"
	"baton/sdk/go/internal/probeutil"
)

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "udp-probe %d %s\n", os.Getpid(), fmt.Sprintf(format, args...))
}

type probe struct {
	d *baton.Daemon

	mu   sync.Mutex
	udp  net.PacketConn // nil while not serving
	done chan struct{}  // closed when udp's reader has returned
	srv  *http.Server
}

func (p *probe) serve() error {
	pc, err := p.d.PacketConn("udp")
	if err != nil {
		return err
	}
	l, err := p.d.Listener("http")
	if err != nil {
		pc.Close()
		return err
	}
	done := make(chan struct{})
	go echo(pc, done)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "pid=%d", os.Getpid())
	})}
	go srv.Serve(l)
	p.mu.Lock()
	p.udp, p.done, p.srv = pc, done, srv
	p.mu.Unlock()
	return nil
}

// echo answers each datagram on pc until a read fails for its deadline or
// because pc is closed. A datagram read is always answered.
func echo(pc net.PacketConn, done chan struct{}) {
	defer close(done)
	prefix := fmt.Sprintf("pid=%d ", os.Getpid())
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout()) {
				return
			}
			continue
		}
		pc.WriteTo(append([]byte(prefix), buf[:n]...), from)
	}
}

// stop ends serving: the reader returns at a deadline in the past (a
// datagram it already read still answered), then the PacketConn and the
// HTTP listener, both dups, are closed.
func (p *probe) stop() {
	p.mu.Lock()
	pc, done, srv := p.udp, p.done, p.srv
	p.udp, p.done, p.srv = nil, nil, nil
	p.mu.Unlock()
	if pc == nil {
		return
	}
	pc.SetReadDeadline(time.Unix(1, 0))
	<-done
	pc.Close()
	srv.Close()
}

func (p *probe) Warm(context.Context) error { return nil }
func (p *probe) Drain(context.Context) error {
	p.stop()
	say("drained")
	return nil
}
func (p *probe) Seal() (baton.SealReport, error)                { return baton.SealReport{}, nil }
func (p *probe) Begin(context.Context, baton.SealedState) error { return p.serve() }
func (p *probe) Resume(bool) error                              { return p.serve() }
func (p *probe) Retire()                                        { p.stop() }

func main() {
	d, err := baton.New(baton.Options{BuildID: "go-udp-probe"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpprobe:", err)
		os.Exit(2)
	}
	if d.Role() == baton.Standalone {
		fmt.Fprintln(os.Stderr, "udpprobe: needs a supervisor (baton supervise)")
		os.Exit(2)
	}
	_, err = d.Listener("udp")
	say("stream on udp: code=%d %v", probeutil.Code(err), err)
	_, err = d.PacketConn("http")
	say("datagram on http: code=%d %v", probeutil.Code(err), err)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; d.RequestExit(0) }()
	p := &probe{d: d}
	if err := d.Start(p); err != nil {
		say("start failed %d %v", probeutil.Code(err), err)
		d.Close()
		os.Exit(1)
	}
	if d.Role() != baton.Successor { // a successor serves from Begin
		if err := p.serve(); err != nil {
			say("serve failed %d %v", probeutil.Code(err), err)
			d.Close()
			os.Exit(1)
		}
	}
	code, _ := d.Wait()
	p.stop()
	d.Close()
	os.Exit(code)
}
