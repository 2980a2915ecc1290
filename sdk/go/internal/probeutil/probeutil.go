// Package probeutil holds what the SDK's test daemons (handoverprobe,
// udpprobe) share.
package probeutil

import (
	"errors"

	baton "baton/sdk/go"
)

// Code is the baton code of err as a number (0 for nil, -1 for another
// error), as the tests read it from the daemons' traces.
func Code(err error) int {
	var e *baton.Error
	if err == nil {
		return 0
	}
	if errors.As(err, &e) {
		return int(e.Code)
	}
	return -1
}
