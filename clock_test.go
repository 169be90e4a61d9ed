package main

// This file is the tests' fake clock.

import (
	"os"
	"testing"
	"time"
	"tutorials/internal/fakeclock"
)

// fakeClock is the clock of the test servers: it stands still until a test
// moves it, so that a test of rate limits can wait ten minutes without
// sleeping, and a test can know to the second what created_at will be.
//
// It starts at today's time, shifted by TUTORIALS_TEST_CLOCK_SHIFT (a Go
// duration such as 8760h or -8760h) when that is set, so that the suite can
// be run as if it were a year later or earlier: no test may pass only
// before or only after some date (see the README's section on the tests).
type fakeClock struct{ *fakeclock.Clock }

func newFakeClock(t testing.TB) *fakeClock {
	t.Helper()
	var shift time.Duration
	if s := os.Getenv("TUTORIALS_TEST_CLOCK_SHIFT"); s != "" {
		var err error
		if shift, err = time.ParseDuration(s); err != nil {
			t.Fatalf("TUTORIALS_TEST_CLOCK_SHIFT: %v", err)
		}
	}
	// Whole seconds, as the server stores them, so that a time a test
	// reads off the clock is the time it will find in a response.
	return &fakeClock{fakeclock.New(time.Now().Add(shift).UTC().Truncate(time.Second))}
}

func (c *fakeClock) now() time.Time { return c.Now() }

func (c *fakeClock) advance(d time.Duration) { c.Advance(d) }
