// Package fakeclock is a clock for tests: it stands still until the test
// moves it, so that a test can wait ten minutes without sleeping, and know
// to the nanosecond what time the code under test will read.
//
//	c := fakeclock.New(start)
//	c.Now()           // pass c.Now where the code takes a clock
//	c.Advance(time.Minute)
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a fake clock. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock {
	return &Clock{t: start}
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
