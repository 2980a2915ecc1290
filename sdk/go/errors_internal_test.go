package baton

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// The code a hook's error is reported with.
func TestHookErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		want Code
	}{
		{Errorf(IOError, "seal: fsync"), IOError},
		{fmt.Errorf("begin: %w", Errorf(FailedPrecondition, "revision")), FailedPrecondition},
		{fmt.Errorf("wrapped code: %w", Busy), Busy},
		{errors.New("plain"), Internal},
		{io.ErrUnexpectedEOF, Internal},
		{&Error{Code: OK, Message: "no code"}, Internal}, // a failure is never OK
	}
	for _, c := range cases {
		if got := codeOf(c.err); got != c.want {
			t.Errorf("codeOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
