// Gokvd is kvd's HTTP key-value store in Go, with its state in an
// append-only log in the data dir, upgradable in place by baton through the
// Go SDK (package baton, over libbaton's C ABI).
//
//	gokvd [--data-dir DIR] [--listen-name NAME] [--build-id ID] [--port PORT]
//	      [--schema-min N] [--schema-max N]
//
// Supervised (`baton supervise ... -- gokvd`) it serves the inherited
// listener NAME (default "http"); alone it listens on 127.0.0.1:PORT. The
// data dir defaults to $BATON_DATA_DIR. Exit codes: 0 clean exit, 1 could
// not start, 2 bad arguments or environment.
//
// This file is the whole baton integration: the hooks and main. The store
// (store.go) and the HTTP server (server.go) do not know baton exists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"

	baton "baton/sdk/go"
)

// app implements baton.Hooks.
type app struct {
	st     *store
	srv    *server
	listen func() (net.Listener, error)
	test   testFlags
}

type testFlags struct{ exitAtStart, failBegin, failSeal bool }

// Warm: the successor replays what is there, read-only (the incumbent
// still writes).
func (a *app) Warm(ctx context.Context) error { return a.st.replay(true) }

// Drain: stop accepting, finish requests, close keep-alive connections.
// Every acknowledged PUT is already fsynced.
func (a *app) Drain(ctx context.Context) error {
	a.srv.drain(ctx)
	return nil
}

// Seal: fsync and close the writer; report what is durable.
func (a *app) Seal() (baton.SealReport, error) {
	err := a.st.closeWriter()
	if err == nil && a.test.failSeal {
		err = errors.New("--fail-seal")
	}
	rev, fp := a.st.state()
	if err != nil {
		err = baton.Errorf(baton.IOError, "seal: %v", err)
	}
	return baton.SealReport{Revision: rev, Fingerprint: fp}, err
}

// Begin: the successor owns the data now: replay the tail, check it ends
// where the incumbent sealed, open the writer, serve.
func (a *app) Begin(ctx context.Context, sealed baton.SealedState) error {
	if err := a.st.replay(false); err != nil {
		return err
	}
	if rev, fp := a.st.state(); sealed.Sealed && (rev != sealed.Revision || fp != sealed.Fingerprint) {
		return fmt.Errorf("replayed revision %d fingerprint %s, but the incumbent sealed %d %s",
			rev, fp, sealed.Revision, sealed.Fingerprint)
	}
	if a.test.failBegin {
		return errors.New("--fail-begin")
	}
	return a.open()
}

// Resume: after a rollback, reload if another process wrote, then serve.
func (a *app) Resume(dataChanged bool) error {
	replay := func() error { return a.st.replay(false) }
	if dataChanged {
		replay = a.st.reload
	}
	if err := replay(); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return a.open()
}

// Retire: the successor serves; stop.
func (a *app) Retire() { a.srv.stop() }

// open opens the writer and serves a new listener (the last one was closed
// by the drain; the inherited socket was not).
func (a *app) open() error {
	if err := a.st.openWriter(); err != nil {
		return err
	}
	l, err := a.listen()
	if err != nil {
		return err
	}
	a.srv.serve(l)
	return nil
}

func main() {
	dataDir := flag.String("data-dir", "", "the data dir (default $BATON_DATA_DIR)")
	name := flag.String("listen-name", "http", "the inherited listener to serve")
	buildID := flag.String("build-id", "gokvd", "shown by baton status")
	port := flag.Int("port", 8080, "standalone: the port to listen on at 127.0.0.1")
	// 2 is the kv.log format gokvd shares byte for byte with rustkvd
	// (docs/integrate.md, "State schemas"); kvd (1), pykvd (3) and ckvd (4)
	// write others, so a handoff to or from them is refused up front.
	schemaMin := flag.Uint("schema-min", 2, "oldest on-disk state schema this build reads")
	schemaMax := flag.Uint("schema-max", 2, "newest on-disk state schema this build reads")
	var test testFlags
	flag.BoolVar(&test.exitAtStart, "exit-at-start", false, "testing: exit 1 at once")
	flag.BoolVar(&test.failBegin, "fail-begin", false, "testing: the begin hook fails")
	flag.BoolVar(&test.failSeal, "fail-seal", false, "testing: the seal hook fails")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gokvd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *schemaMin == 0 || *schemaMin > math.MaxUint32 || *schemaMax > math.MaxUint32 || *schemaMin > *schemaMax {
		fmt.Fprintf(os.Stderr, "gokvd: --schema-min %d --schema-max %d: need 1 <= min <= max < 2^32\n",
			*schemaMin, *schemaMax)
		os.Exit(2)
	}
	if test.exitAtStart {
		os.Exit(1)
	}
	d, err := baton.New(baton.Options{BuildID: *buildID, DataDir: *dataDir,
		StateSchemaMin: uint32(*schemaMin), StateSchemaMax: uint32(*schemaMax)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "gokvd: %v\n", err)
		os.Exit(2)
	}
	a := &app{st: newStore(d.DataDir()), test: test}
	a.srv = newServer(a.st)
	a.listen = func() (net.Listener, error) { return d.Listener(*name) }
	if d.Role() == baton.Standalone {
		a.listen = func() (net.Listener, error) { return net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port)) }
	}
	// Cold start / standalone: takes the data-dir lock and returns.
	// Successor: runs Warm and Begin, and returns once we serve.
	if err := d.Start(a); err != nil {
		fmt.Fprintf(os.Stderr, "gokvd: start: %v\n", err)
		d.Close()
		os.Exit(1)
	}
	if d.Role() != baton.Successor {
		// We hold the lock: recover (cutting a torn tail), then serve.
		err := a.st.replay(false)
		if err == nil {
			err = a.open()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gokvd: recovery: %v\n", err)
			d.Close()
			os.Exit(1)
		}
	}
	rev, _ := a.st.state()
	fmt.Fprintf(os.Stderr, "gokvd: serving at revision %d\n", rev)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		d.RequestExit(0)
	}()
	code, err := d.Wait()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gokvd: %v\n", err)
	}
	a.srv.stop()
	if err := a.st.closeWriter(); err != nil {
		fmt.Fprintf(os.Stderr, "gokvd: %v\n", err)
	}
	d.Close()
	fmt.Fprintf(os.Stderr, "gokvd: exiting with %d\n", code)
	os.Exit(code)
}
