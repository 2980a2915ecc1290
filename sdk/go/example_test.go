package baton_test

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"

	baton "baton/sdk/go"
)

// A daemon's hooks: here an HTTP server over some store.
type myDaemon struct {
	d    *baton.Daemon
	srv  *http.Server
	done chan struct{}
}

func (m *myDaemon) Warm(ctx context.Context) error { return nil } // read-only start-up
func (m *myDaemon) Drain(ctx context.Context) error {
	// Stops accepting (closing the listener, a dup of the inherited fd),
	// finishes in-flight requests, closes idle connections.
	return m.srv.Shutdown(ctx)
}
func (m *myDaemon) Seal() (baton.SealReport, error) {
	// fsync and close the writer here.
	return baton.SealReport{Revision: 42, Fingerprint: "00ff"}, nil
}
func (m *myDaemon) Begin(ctx context.Context, sealed baton.SealedState) error {
	if sealed.Sealed && sealed.Revision != 42 {
		return baton.Errorf(baton.FailedPrecondition, "sealed at %d, found 42", sealed.Revision)
	}
	return m.serve()
}
func (m *myDaemon) Resume(dataChanged bool) error { return m.serve() }
func (m *myDaemon) Retire()                       { m.srv.Close() }

func (m *myDaemon) serve() error {
	l, err := m.d.Listener("http")
	if err != nil {
		return err
	}
	m.srv = &http.Server{Handler: http.NotFoundHandler()}
	go m.srv.Serve(l)
	return nil
}

// The life of a daemon under `baton supervise`.
func Example() {
	d, err := baton.New(baton.Options{BuildID: "mydaemon 1.0"}) // data dir: $BATON_DATA_DIR
	if err != nil {
		log.Fatal(err)
	}
	m := &myDaemon{d: d}
	if err := d.Start(m); err != nil { // a successor's Warm and Begin run in here
		log.Fatal(err)
	}
	if d.Role() != baton.Successor {
		// Cold start: the data-dir lock is ours; recover, then serve.
		if err := m.serve(); err != nil {
			log.Fatal(err)
		}
	}
	code, _ := d.Wait() // after Retire, or RequestExit (e.g. on SIGTERM)
	d.Close()
	os.Exit(code)
}

// Errors carry a Code; errors.Is compares codes.
func ExampleError() {
	var d *baton.Daemon // from baton.New
	l, err := d.Listener("http")
	if errors.Is(err, baton.NotFound) {
		l, err = net.Listen("tcp", "127.0.0.1:8080") // standalone: listen by ourselves
	}
	_, _ = l, err
}

// A build that reads and writes two on-disk formats, 2 and 3: it can take
// over from a generation that wrote either, and one that speaks neither is
// refused at Hello (`baton upgrade` exits 4) before anything changes.
func ExampleNew_stateSchema() {
	d, err := baton.New(baton.Options{BuildID: "mydaemon 2.0", StateSchemaMin: 2, StateSchemaMax: 3})
	if err != nil {
		log.Fatal(err) // e.g. InvalidArgument: StateSchemaMin > StateSchemaMax
	}
	defer d.Close()
}

// A `udp://` listener ("dns"): each generation echoes on its own dup of
// the bound socket. Drain sets a read deadline in the past
// (pc.SetReadDeadline(time.Unix(1, 0))), waits for the reader to return,
// then closes pc; the datagrams it did not read wait in the socket for the
// successor.
func ExampleDaemon_PacketConn() {
	var d *baton.Daemon // from baton.New
	pc, err := d.PacketConn("dns")
	if errors.Is(err, baton.NotFound) {
		pc, err = net.ListenPacket("udp", "127.0.0.1:5353") // standalone: bind by ourselves
	}
	if err != nil {
		log.Fatal(err) // InvalidArgument: "dns" is a stream listener
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // Drain's deadline
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}
