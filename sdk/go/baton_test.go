package baton_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	baton "baton/sdk/go"
)

func TestCodesHaveTheCABINumbersAndNames(t *testing.T) {
	cases := []struct {
		code baton.Code
		num  int
		name string
	}{
		{baton.OK, 0, "ok"}, {baton.Unavailable, 1, "unavailable"}, {baton.Aborted, 2, "aborted"},
		{baton.FailedPrecondition, 3, "failed precondition"}, {baton.DeadlineExceeded, 4, "deadline exceeded"},
		{baton.ProtocolError, 5, "protocol error"}, {baton.InvalidArgument, 6, "invalid argument"},
		{baton.Busy, 7, "busy"}, {baton.NotFound, 8, "not found"}, {baton.PermissionDenied, 9, "permission denied"},
		{baton.Internal, 10, "internal error"}, {baton.Incompatible, 11, "incompatible"}, {baton.IOError, 12, "io error"},
	}
	for _, c := range cases {
		if int(c.code) != c.num {
			t.Errorf("%v is %d, want %d", c.code, int(c.code), c.num)
		}
		if c.code.String() != c.name {
			t.Errorf("code %d is named %q, want %q", c.num, c.code.String(), c.name)
		}
	}
	if got := baton.Code(99).String(); got != "unknown" {
		t.Errorf("code 99 is named %q, want unknown", got)
	}
}

func TestErrorsMatchByCode(t *testing.T) {
	err := fmt.Errorf("opening: %w", baton.Errorf(baton.NotFound, "no listener %q", "http"))
	if !errors.Is(err, baton.NotFound) {
		t.Errorf("errors.Is(%v, NotFound) is false", err)
	}
	if !errors.Is(err, &baton.Error{Code: baton.NotFound}) {
		t.Errorf("errors.Is(%v, &Error{NotFound}) is false", err)
	}
	if errors.Is(err, baton.Busy) {
		t.Errorf("errors.Is(%v, Busy) is true", err)
	}
	var be *baton.Error
	if !errors.As(err, &be) || be.Code != baton.NotFound || be.Message != `no listener "http"` {
		t.Errorf("errors.As gave %#v", be)
	}
	if got, want := be.Error(), `baton: no listener "http" (not found)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Is(errors.New("not found"), baton.NotFound) {
		t.Error("a plain error matches NotFound")
	}
}

// The library's own errors arrive as *Error with its code and message.
func TestNewWithoutDataDirIsInvalidArgument(t *testing.T) {
	t.Setenv("BATON_DATA_DIR", "")
	os.Unsetenv("BATON_DATA_DIR")
	d, err := baton.New(baton.Options{})
	if d != nil || !errors.Is(err, baton.InvalidArgument) {
		t.Fatalf("New without a data dir = %v, %v; want InvalidArgument", d, err)
	}
	var be *baton.Error
	if !errors.As(err, &be) || be.Message == "" {
		t.Errorf("no message from the library: %#v", err)
	}
}

func TestNewChecksItsArguments(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []baton.Options{
		{DataDir: dir, StateSchemaMin: 3, StateSchemaMax: 2},
		{DataDir: dir, LeaseName: "x", LeaseTTL: -time.Second},
	} {
		if d, err := baton.New(o); d != nil || !errors.Is(err, baton.InvalidArgument) {
			t.Errorf("New(%+v) = %v, %v; want InvalidArgument", o, d, err)
		}
	}
}

type noHooks struct{}

func (noHooks) Warm(context.Context) error                     { return errors.New("warm called") }
func (noHooks) Drain(context.Context) error                    { return errors.New("drain called") }
func (noHooks) Seal() (baton.SealReport, error)                { return baton.SealReport{}, errors.New("seal called") }
func (noHooks) Begin(context.Context, baton.SealedState) error { return errors.New("begin called") }
func (noHooks) Resume(bool) error                              { return errors.New("resume called") }
func (noHooks) Retire()                                        {}

// Without a supervisor the daemon runs standalone: no listener, Start
// takes the data-dir lock, RequestExit ends Wait.
func TestStandaloneLifeCycle(t *testing.T) {
	dir := t.TempDir()
	logged := make(chan string, 100)
	d, err := baton.New(baton.Options{BuildID: "test", DataDir: dir, Log: func(_ baton.Level, event, _, _ string) {
		select {
		case logged <- event:
		default:
		}
	}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer d.Close()
	if d.Role() != baton.Standalone || d.Role().String() != "standalone" {
		t.Errorf("Role() = %v, want standalone", d.Role())
	}
	if d.DataDir() != dir {
		t.Errorf("DataDir() = %q, want %q", d.DataDir(), dir)
	}
	if names := d.ListenerNames(); len(names) != 0 {
		t.Errorf("ListenerNames() = %v, want none", names)
	}
	if _, err := d.Listener("http"); !errors.Is(err, baton.NotFound) {
		t.Errorf("Listener(http) = %v, want NotFound", err)
	}
	if err := d.ReportUnhealthy("no supervisor"); !errors.Is(err, baton.FailedPrecondition) {
		t.Errorf("ReportUnhealthy standalone = %v, want FailedPrecondition", err)
	}
	if _, err := d.Listener(""); !errors.Is(err, baton.InvalidArgument) {
		t.Errorf("Listener(\"\") = %v, want InvalidArgument", err)
	}
	if _, err := d.PacketConn("dns"); !errors.Is(err, baton.NotFound) {
		t.Errorf("PacketConn(dns) = %v, want NotFound", err)
	}
	if _, err := d.PacketConn(""); !errors.Is(err, baton.InvalidArgument) {
		t.Errorf("PacketConn(\"\") = %v, want InvalidArgument", err)
	}
	if err := d.Start(nil); !errors.Is(err, baton.InvalidArgument) {
		t.Errorf("Start(nil) = %v, want InvalidArgument", err)
	}
	if err := d.Start(noHooks{}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := d.Start(noHooks{}); !errors.Is(err, baton.FailedPrecondition) {
		t.Errorf("a second Start = %v, want FailedPrecondition", err)
	}
	if d.LeaseEpoch() != 0 {
		t.Errorf("LeaseEpoch() = %d without a lease", d.LeaseEpoch())
	}

	// A second daemon on the same data dir cannot take the lock.
	other, err := baton.New(baton.Options{DataDir: dir, Log: func(baton.Level, string, string, string) {}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := other.Start(noHooks{}); !errors.Is(err, baton.FailedPrecondition) {
		t.Errorf("Start on a locked data dir = %v, want FailedPrecondition", err)
	}
	other.Close()

	go d.RequestExit(7)
	if code, err := d.Wait(); code != 7 || err != nil {
		t.Errorf("Wait() = %d, %v; want 7", code, err)
	}
	if err := d.RequestExit(9); err != nil {
		t.Errorf("a second RequestExit: %v", err)
	}
	if code, _ := d.Wait(); code != 7 {
		t.Errorf("the first request must win: Wait() = %d", code)
	}
	d.Close()
	d.Close()
	if err := d.Start(noHooks{}); !errors.Is(err, baton.FailedPrecondition) {
		t.Errorf("Start after Close = %v, want FailedPrecondition", err)
	}
	if len(logged) == 0 {
		t.Error("the Log callback received no event")
	}
}

// Outside a Drain or Seal hook nothing may be handed over, and a refused
// descriptor stays the caller's; with nothing handed over the takes are
// empty. (Real handoffs: tests/sdk/handover_test.cc with
// internal/handoverprobe.)
func TestHandoverOutsideAHandoff(t *testing.T) {
	d, err := baton.New(baton.Options{DataDir: t.TempDir(), Log: func(baton.Level, string, string, string) {}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer d.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := d.HandOver(baton.HandoverFile, "x", r, []byte("meta")); !errors.Is(err, baton.FailedPrecondition) {
		t.Errorf("HandOver outside drain = %v, want FailedPrecondition", err)
	}
	if err := d.HandOver(baton.HandoverConnection, "x", r, nil); !errors.Is(err, baton.InvalidArgument) {
		t.Errorf("HandOver of a pipe as a connection = %v, want InvalidArgument", err)
	}
	if err := d.HandOver(baton.HandoverFile, "x", nil, nil); !errors.Is(err, baton.InvalidArgument) {
		t.Errorf("HandOver(nil) = %v, want InvalidArgument", err)
	}
	if err := d.HandOverFD(baton.HandoverKind(7), "x", 0, nil); !errors.Is(err, baton.InvalidArgument) {
		t.Errorf("HandOverFD with kind 7 = %v, want InvalidArgument", err)
	}
	// Every refusal left r open and ours.
	if _, err := w.WriteString("ok"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := r.Read(buf); err != nil || string(buf) != "ok" {
		t.Errorf("the refused pipe reads %q, %v", buf, err)
	}
	if err := d.SetHandoverState([]byte("state")); !errors.Is(err, baton.FailedPrecondition) {
		t.Errorf("SetHandoverState outside drain = %v, want FailedPrecondition", err)
	}
	if handed, err := d.TakeHandedOver(); len(handed) != 0 || err != nil {
		t.Errorf("TakeHandedOver = %v, %v; want nothing", handed, err)
	}
	if state, err := d.TakeHandoverState(); state != nil || err != nil {
		t.Errorf("TakeHandoverState = %q, %v; want nil", state, err)
	}
	if baton.HandoverConnection.String() != "connection" || baton.HandoverFile.String() != "file" {
		t.Errorf("kind names: %v %v", baton.HandoverConnection, baton.HandoverFile)
	}
}
