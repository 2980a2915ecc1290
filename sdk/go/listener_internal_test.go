package baton

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// What Listener and PacketConn accept, on sockets of each type a listener
// can be (the real udp:// path: tests/sdk/udp_test.cc).
func TestListenerTypeCheck(t *testing.T) {
	socket := func(domain, typ int) int {
		fd, err := syscall.Socket(domain, typ|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("socket(%d, %d): %v", domain, typ, err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
		return fd
	}
	tcp := socket(syscall.AF_INET, syscall.SOCK_STREAM)
	udp := socket(syscall.AF_INET, syscall.SOCK_DGRAM)
	unix := socket(syscall.AF_UNIX, syscall.SOCK_STREAM)
	seqpacket := socket(syscall.AF_UNIX, syscall.SOCK_SEQPACKET)

	for _, ok := range []struct {
		fd       int
		datagram bool
	}{{tcp, false}, {unix, false}, {seqpacket, false}, {udp, true}} {
		if err := checkListenerType("l", ok.fd, ok.datagram); err != nil {
			t.Errorf("fd %d, datagram=%v: %v", ok.fd, ok.datagram, err)
		}
	}
	for _, bad := range []struct {
		name     string
		fd       int
		datagram bool
		says     string
	}{
		{"dns", udp, false, `listener "dns" is a datagram socket (udp://), not a stream listener: use PacketConn`},
		{"http", tcp, true, `listener "http" is a stream listener (tcp:// or unix:), not a datagram socket (udp://): use Listener`},
		{"sock", unix, true, `listener "sock" is a stream listener (tcp:// or unix:)`},
		{"seq", seqpacket, true, `listener "seq" is a seqpacket listener, not a datagram socket`},
	} {
		err := checkListenerType(bad.name, bad.fd, bad.datagram)
		var e *Error
		if !errors.As(err, &e) || e.Code != InvalidArgument || !strings.HasPrefix(e.Message, bad.says) {
			t.Errorf("%s (datagram=%v) = %v, want InvalidArgument saying %q", bad.name, bad.datagram, err, bad.says)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := checkListenerType("pipe", int(r.Fd()), false); !errors.Is(err, IOError) {
		t.Errorf("a pipe = %v, want IOError", err)
	}
}
