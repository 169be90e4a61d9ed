package ratelimit

// These tests hold the token buckets to their promises: Retry-After is
// never early, and buckets are kept and dropped as the package says.

import (
	"fmt"
	"math"
	"testing"
	"time"
	"tutorials/internal/fakeclock"
)

// RetryAfter is held to its promise for many rates and moments: a client
// that waits as long as it says, in whole seconds rounded up as the
// Retry-After header gives it, is let in, and one that comes back a second
// sooner is not (so the wait is not padded either).
func TestRetryAfterIsNeverEarly(t *testing.T) {
	for _, perSecond := range []float64{0.05, 0.3, 0.7, 1, 1.5, 3, 7.5, 100} {
		refill := time.Duration(float64(time.Second) / perSecond)
		for _, fraction := range []float64{0, 0.123, 0.5, 0.999} {
			t.Run(fmt.Sprintf("rate %v, %v of a refill later", perSecond, fraction), func(t *testing.T) {
				clock := fakeclock.New(time.Now())
				l, limit := New(clock.Now), Limit{Rate: perSecond, Burst: 1}
				l.Take("k", limit)
				clock.Advance(time.Duration(fraction * float64(refill)))
				st := l.Take("k", limit)
				if st.Allowed {
					t.Fatal("allowed before the bucket refilled")
				}
				retry := time.Duration(max(1, math.Ceil(st.RetryAfter.Seconds()))) * time.Second
				if retry > time.Second {
					clock.Advance(retry - time.Second)
					if l.Check("k", limit).Allowed {
						t.Errorf("Retry-After %v is padded: a second sooner is already allowed", retry)
					}
					clock.Advance(time.Second)
				} else {
					clock.Advance(retry)
				}
				if st := l.Take("k", limit); !st.Allowed {
					t.Errorf("Retry-After %v is too early: still refused, next in %v", retry, st.RetryAfter)
				}
			})
		}
	}
}

func TestBucketsThatAreNotFullAreKept(t *testing.T) {
	// One request an hour, a burst of 2: a bucket emptied needs two hours to
	// fill. Dropping it after ten idle minutes would hand back a full one.
	clock := fakeclock.New(time.Now())
	l, limit := New(clock.Now), Limit{Rate: 1.0 / 3600, Burst: 2}
	l.Take("slow", limit)
	l.Take("slow", limit)
	clock.Advance(IdleAfter + SweepEvery)
	l.Take("other", limit)
	if st := l.Check("slow", limit); st.Allowed {
		t.Errorf("the slow client's bucket was dropped and came back full")
	}
	clock.Advance(2 * time.Hour)
	l.Take("other", limit)
	if n := l.Len(); n != 1 {
		t.Errorf("%d buckets after two more hours, want 1", n)
	}
}

// Check never makes a bucket: a client that is only looked at costs no
// memory.
func TestCheckMakesNoBucket(t *testing.T) {
	l := New(fakeclock.New(time.Now()).Now)
	if st := l.Check("new", Limit{Rate: 1, Burst: 3}); !st.Allowed || st.Remaining != 3 {
		t.Errorf("Check of a new client: %+v, want allowed with 3 left", st)
	}
	if n := l.Len(); n != 0 {
		t.Errorf("%d buckets after a Check, want 0", n)
	}
}
