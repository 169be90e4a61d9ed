// Package ratelimit keeps a token bucket for each client of the server, a
// key or an address:
//
//	l := ratelimit.New(now)
//	st := l.Take(id, ratelimit.Limit{Rate: 10, Burst: 20}) // spend one request
//	st = l.Check(id, limit)                                // look, spending nothing
//	st.Allowed, st.Remaining, st.UntilFull, st.RetryAfter
//	l.Len()                                                // clients remembered
//	st.SetHeaders(h, "key"); st.SetRetryAfter(h)          // tell the client
//
// A bucket holds up to Burst requests and refills at Rate per second, as
// the caller's Limit says each time: a bucket whose limit changes keeps its
// tokens and takes the new limit from that moment. Buckets are made on
// first use and dropped once idle and full again, so the memory a Limiter
// holds is bounded by the clients of the last minutes, not by every client
// since the server started. Time comes from the clock given to New.
package ratelimit

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// A bucket unused for IdleAfter is dropped, once it is full again: a
// dropped bucket comes back full, so dropping one earlier would hand its
// client free requests. The buckets are looked over every SweepEvery.
const (
	IdleAfter  = 10 * time.Minute
	SweepEvery = time.Minute
)

// Limit is Rate requests a second, in bursts of up to Burst.
type Limit struct {
	Rate  float64
	Burst int
}

// Refill is how long a bucket with limit l takes to gain n requests.
func (l Limit) Refill(n float64) time.Duration {
	if n <= 0 {
		return 0
	}
	return time.Duration(math.Ceil(n / l.Rate * float64(time.Second)))
}

// State is what a bucket says about one request.
type State struct {
	Allowed    bool
	Limit      Limit         // the bucket's
	Remaining  int           // whole requests the client may make now
	UntilFull  time.Duration // until the bucket holds a full burst again
	RetryAfter time.Duration // until a request is allowed again; 0 if allowed
}

// Limiter is a set of token buckets by client. It is safe for concurrent
// use.
type Limiter struct {
	now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens   *rate.Limiter
	lastUsed time.Time
}

// New returns a Limiter on the clock now.
func New(now func() time.Time) *Limiter {
	return &Limiter{now: now, buckets: make(map[string]*bucket), lastSweep: now()}
}

// Take spends one request from id's bucket, which has limit, if it holds
// one.
func (l *Limiter) Take(id string, limit Limit) State {
	now := l.now()
	b := l.bucket(id, limit, now, true)
	return state(b, limit, now, b.AllowN(now, 1))
}

// Check reports whether id's bucket holds a request, without spending it or
// making a bucket for a client that has none.
func (l *Limiter) Check(id string, limit Limit) State {
	now := l.now()
	b := l.bucket(id, limit, now, false)
	if b == nil {
		return State{Allowed: true, Limit: limit, Remaining: limit.Burst}
	}
	return state(b, limit, now, b.TokensAt(now) >= 1)
}

// Len is the number of clients the Limiter remembers: what its memory
// grows with.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// bucket returns id's bucket with limit, made if create is set, and now and
// then drops the idle ones.
func (l *Limiter) bucket(id string, limit Limit, now time.Time, create bool) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= SweepEvery {
		l.sweep(now)
	}
	b := l.buckets[id]
	switch {
	case b == nil && !create:
		return nil
	case b == nil:
		b = &bucket{tokens: rate.NewLimiter(rate.Limit(limit.Rate), limit.Burst)}
		l.buckets[id] = b
	case b.tokens.Limit() != rate.Limit(limit.Rate) || b.tokens.Burst() != limit.Burst:
		b.tokens.SetLimitAt(now, rate.Limit(limit.Rate))
		b.tokens.SetBurstAt(now, limit.Burst)
	}
	b.lastUsed = now
	return b.tokens
}

// sweep drops the buckets that have been idle for IdleAfter and are full.
// It holds l.mu; once a minute, a pass over the map is cheap.
func (l *Limiter) sweep(now time.Time) {
	for id, b := range l.buckets {
		if now.Sub(b.lastUsed) >= IdleAfter && b.tokens.TokensAt(now) >= float64(b.tokens.Burst()) {
			delete(l.buckets, id)
		}
	}
	l.lastSweep = now
}

func state(b *rate.Limiter, limit Limit, now time.Time, allowed bool) State {
	tokens := b.TokensAt(now)
	st := State{Allowed: allowed, Limit: limit, Remaining: max(0, int(tokens)),
		UntilFull: limit.Refill(float64(limit.Burst) - tokens)}
	if !allowed {
		st.RetryAfter = limit.Refill(1 - tokens)
	}
	return st
}

// SetHeaders writes the RateLimit-Policy and RateLimit headers of the IETF
// httpapi draft (draft-ietf-httpapi-ratelimit-headers), under the policy
// name: the policy (a burst of q requests, refilled in w seconds) and the
// state of the client's bucket (r requests left, full again in t seconds).
func (s State) SetHeaders(h http.Header, name string) {
	q := s.Limit.Burst
	h.Set("RateLimit-Policy", fmt.Sprintf(`%q;q=%d;w=%d`, name, q, wholeSeconds(s.Limit.Refill(float64(q)))))
	h.Set("RateLimit", fmt.Sprintf(`%q;r=%d;t=%d`, name, s.Remaining, wholeSeconds(s.UntilFull)))
}

// SetRetryAfter writes Retry-After in whole seconds, rounded up and at
// least 1, so that a client that waits as told is never refused again for
// having come back early.
func (s State) SetRetryAfter(h http.Header) {
	h.Set("Retry-After", strconv.FormatInt(max(1, wholeSeconds(s.RetryAfter)), 10))
}

// wholeSeconds is d in seconds, rounded up.
func wholeSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
