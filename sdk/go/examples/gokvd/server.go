package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// server is gokvd's HTTP interface, kvd's: PUT /kv/<key> (answered with the
// revision once fsynced), GET /kv/<key> (404 if absent), GET /healthz. It
// knows nothing about baton: it serves a listener until drained or stopped.
type server struct {
	st  *store
	srv *http.Server

	mu       sync.Mutex
	conns    map[*conn]http.ConnState
	l        net.Listener  // nil when not serving
	served   chan struct{} // closed when Serve on l returned
	draining atomic.Bool   // answers say Connection: close
}

// conn counts the bytes read, so a drain can tell an idle keep-alive
// connection whose next request has begun to arrive from a silent one.
type conn struct {
	net.Conn
	read     atomic.Int64
	idleMark int64 // read when it last became idle (under server.mu)
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c}, nil
}

func newServer(st *store) *server {
	s := &server{st: st, conns: map[*conn]http.ConnState{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ConnState: s.connState,
		ReadHeaderTimeout: 30 * time.Second}
	return s
}

func (s *server) connState(nc net.Conn, state http.ConnState) {
	c := nc.(*conn)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	case http.StateIdle:
		c.idleMark = c.read.Load()
		s.conns[c] = state
	default:
		s.conns[c] = state
	}
}

// serve accepts on l (until drain or stop) on a goroutine of its own.
func (s *server) serve(l net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining.Store(false)
	s.l, s.served = l, make(chan struct{})
	go func(served chan struct{}) {
		s.srv.Serve(listener{l}) // returns once l is closed
		close(served)
	}(s.served)
}

// stopAccepting closes the listener (a dup of the inherited fd: the
// listening socket itself stays open) and waits for Serve to return.
func (s *server) stopAccepting() {
	s.mu.Lock()
	l, served := s.l, s.served
	s.l = nil
	s.mu.Unlock()
	if l != nil {
		l.Close()
		<-served
	}
}

// drain stops accepting, answers every further request with Connection:
// close, waits for the connections to end, and closes those still silent
// after the idle wait (min(1 s, half the time left)); at ctx's deadline
// it closes all but those in the middle of a request.
func (s *server) drain(ctx context.Context) {
	s.draining.Store(true)
	s.stopAccepting()
	idle := time.Second
	if d, ok := ctx.Deadline(); ok && time.Until(d)/2 < idle {
		idle = time.Until(d) / 2
	}
	idleDeadline := time.Now().Add(idle)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		left := len(s.conns)
		hard := ctx.Err() != nil
		if !hard && time.Now().After(idleDeadline) {
			for c, st := range s.conns {
				if (st == http.StateIdle && c.read.Load() == c.idleMark || st == http.StateNew && c.read.Load() == 0) &&
					bytesWaiting(c.Conn) == 0 {
					c.Close()
				}
			}
		}
		if hard {
			for c, st := range s.conns {
				if st != http.StateActive {
					c.Close()
				}
			}
		}
		s.mu.Unlock()
		if left == 0 || hard {
			return
		}
		<-tick.C
	}
}

// bytesWaiting is how many bytes the kernel holds unread for c.
func bytesWaiting(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var n int32
	raw.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	return int(n)
}

// stop ends serving: no listener, no connection.
func (s *server) stop() {
	s.draining.Store(true)
	s.stopAccepting()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "text/plain")
	// The path as the client sent it, not percent-decoded: kvd, rustkvd and
	// pykvd take the key from the raw request target, and a key must name
	// the same record whichever of them wrote it.
	path, _, _ := strings.Cut(r.RequestURI, "?")
	key, isKV := strings.TrimPrefix(path, "/kv/"), strings.HasPrefix(path, "/kv/")
	switch {
	case r.Method == http.MethodGet && path == "/healthz":
		rev, _ := s.st.state()
		fmt.Fprintf(w, "{\"status\":\"ok\",\"pid\":%d,\"revision\":%d}\n", os.Getpid(), rev)
	case !isKV || key == "":
		http.Error(w, "no such route", http.StatusNotFound)
	case len(key) > maxKey:
		http.Error(w, "key too long", http.StatusRequestURITooLong)
	case r.Method == http.MethodGet:
		if v, ok := s.st.get(key); ok {
			w.Write(v)
		} else {
			http.Error(w, "no such key", http.StatusNotFound)
		}
	case r.Method == http.MethodPut:
		value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValue))
		if err != nil {
			http.Error(w, "body too large or cut short", http.StatusRequestEntityTooLarge)
			return
		}
		rev, err := s.st.put(key, value)
		if err != nil {
			http.Error(w, "not writable", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, strconv.FormatUint(rev, 10))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
