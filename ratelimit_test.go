package main

// These tests hold the rate limits: per key, per address for failed keys,
// behind a proxy, a key's own limit, and the settings.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"tutorials/internal/cache"
	"tutorials/internal/lastused"
	"tutorials/internal/ratelimit"

	"github.com/google/go-cmp/cmp"
)

// limitedConfig is testConfig with rate limiting on.
func limitedConfig(t *testing.T, perSecond float64, burst int) config {
	t.Helper()
	cfg := testConfig(t)
	cfg.rate, cfg.burst = perSecond, burst
	return cfg
}

// limitHeaders are the rate limit headers of a response; "" for absent.
type limitHeaders struct {
	Policy, RateLimit, RetryAfter string
}

func limitHeadersOf(resp response) limitHeaders {
	return limitHeaders{resp.header.Get("RateLimit-Policy"), resp.header.Get("RateLimit"), resp.header.Get("Retry-After")}
}

func TestRateLimitPerKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// Each step waits, sends one request with the write key, and expects a
		// status and the rate limit headers exactly.
		type step struct {
			wait   time.Duration
			status int
			want   limitHeaders
		}
		tests := []struct {
			name      string
			perSecond float64
			burst     int
			steps     []step
		}{
			{"a burst, then refused until a request has refilled", 1, 3, []step{
				{0, 200, limitHeaders{`"key";q=3;w=3`, `"key";r=2;t=1`, ""}},
				{0, 200, limitHeaders{`"key";q=3;w=3`, `"key";r=1;t=2`, ""}},
				{0, 200, limitHeaders{`"key";q=3;w=3`, `"key";r=0;t=3`, ""}},
				{0, 429, limitHeaders{`"key";q=3;w=3`, `"key";r=0;t=3`, "1"}},
				{500 * time.Millisecond, 429, limitHeaders{`"key";q=3;w=3`, `"key";r=0;t=3`, "1"}},
				{500 * time.Millisecond, 200, limitHeaders{`"key";q=3;w=3`, `"key";r=0;t=3`, ""}},
				{time.Minute, 200, limitHeaders{`"key";q=3;w=3`, `"key";r=2;t=1`, ""}},
			}},
			{"a slow rate makes a long Retry-After", 0.1, 2, []step{
				{0, 200, limitHeaders{`"key";q=2;w=20`, `"key";r=1;t=10`, ""}},
				{0, 200, limitHeaders{`"key";q=2;w=20`, `"key";r=0;t=20`, ""}},
				{0, 429, limitHeaders{`"key";q=2;w=20`, `"key";r=0;t=20`, "10"}},
				{9500 * time.Millisecond, 429, limitHeaders{`"key";q=2;w=20`, `"key";r=0;t=11`, "1"}},
				{500 * time.Millisecond, 200, limitHeaders{`"key";q=2;w=20`, `"key";r=0;t=20`, ""}},
			}},
			{"a fast rate rounds seconds up", 4, 10, []step{
				{0, 200, limitHeaders{`"key";q=10;w=3`, `"key";r=9;t=1`, ""}},
			}},
			{"a burst of one", 2, 1, []step{
				{0, 200, limitHeaders{`"key";q=1;w=1`, `"key";r=0;t=1`, ""}},
				{0, 429, limitHeaders{`"key";q=1;w=1`, `"key";r=0;t=1`, "1"}},
				{400 * time.Millisecond, 429, limitHeaders{`"key";q=1;w=1`, `"key";r=0;t=1`, "1"}},
				{100 * time.Millisecond, 200, limitHeaders{`"key";q=1;w=1`, `"key";r=0;t=1`, ""}},
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ts := newTestServerWith(t, e, limitedConfig(t, tt.perSecond, tt.burst))
				clock := ts.clock
				for i, s := range tt.steps {
					clock.advance(s.wait)
					resp := ts.request(t, "GET", "/api/v1/tutorials", ts.writeKey, "")
					if resp.status != s.status {
						t.Fatalf("step %d: status %d %q, want %d", i, resp.status, resp.error, s.status)
					}
					if s.status == http.StatusTooManyRequests {
						resp.wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
					}
					if diff := cmp.Diff(s.want, limitHeadersOf(resp)); diff != "" {
						t.Errorf("step %d: headers (-want +got):\n%s", i, diff)
					}
				}
			})
		}
	})
}

func TestRateLimitBucketsAreNotShared(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWith(t, e, limitedConfig(t, 1, 2))
		for range 2 {
			ts.request(t, "GET", "/api/v1/tutorials", ts.writeKey, "")
		}
		ts.request(t, "GET", "/api/v1/tutorials", ts.writeKey, "").wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		// Another key from the same address has its own bucket.
		if resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, ""); resp.status != http.StatusOK {
			t.Errorf("the read key: %d %q, want 200", resp.status, resp.error)
		}
	})
}

func TestFailedAuthenticationIsLimitedPerAddress(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWith(t, e, limitedConfig(t, 1, 3))
		clock := ts.clock
		wrong := keyPrefix + strings.Repeat("0", 64)

		for i, h := range []string{"Bearer " + wrong, "Basic x", ""} {
			resp := ts.request(t, "GET", "/api/v1/tutorials", "", "", "Authorization", h)
			if resp.status != http.StatusUnauthorized {
				t.Fatalf("failure %d: %d %q, want 401", i, resp.status, resp.error)
			}
		}
		resp := ts.request(t, "GET", "/api/v1/tutorials", wrong, "")
		resp.wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		if diff := cmp.Diff(limitHeaders{RetryAfter: "1"}, limitHeadersOf(resp)); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
		// The address is refused before any key is read: a good key from it
		// waits too (the price of costing a flood nothing).
		ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "").wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")

		t.Run("a limited address costs no database work", func(t *testing.T) {
			// With the store closed, any key lookup would be a 500.
			ts.store.Close()
			ts.request(t, "GET", "/api/v1/tutorials", wrong, "").wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		})
		t.Run("the address is let in again once its bucket refills", func(t *testing.T) {
			clock.advance(time.Second)
			ts.request(t, "GET", "/api/v1/tutorials", "", "").wantError(t, http.StatusUnauthorized, "Missing Authorization header")
			ts.request(t, "GET", "/api/v1/tutorials", "", "").wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		})
	})
}

// TestSuccessfulAuthenticationCostsTheAddressNothing looks inside the
// middleware, as TestIdleBucketsAreDropped does: no bucket is made for an
// address whose keys are good, so those clients cost no memory.
func TestSuccessfulAuthenticationCostsTheAddressNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestDatabase(t, e)
		auth := newAuthenticator(limitedConfig(t, 1, 2), ts.store, newKeyCache(cache.NewVersions(ts.store.Version), ts.clock.now), ts.usage, ts.clock.now)
		h := auth.requireKey(scopeRead, http.NotFoundHandler())
		for _, key := range []string{ts.writeKey, ts.readKey} {
			r := httptest.NewRequest("GET", "/api/v1/tutorials", nil)
			r.Header.Set("Authorization", "Bearer "+key)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusNotFound {
				t.Fatalf("a good key: %d, want the handler's 404", w.Code)
			}
		}
		if n := auth.failures.Len(); n != 0 {
			t.Errorf("%d address buckets after only good keys, want 0", n)
		}
	})
}

func TestTrustProxy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		wrong := keyPrefix + strings.Repeat("0", 64)
		// exhaust fails from the address of xff until it is refused.
		exhaust := func(t *testing.T, ts *testServer, xff string) {
			t.Helper()
			for range 2 {
				ts.request(t, "GET", "/api/v1/tutorials", wrong, "", "X-Forwarded-For", xff)
			}
			ts.request(t, "GET", "/api/v1/tutorials", wrong, "", "X-Forwarded-For", xff).wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		}
		statusFrom := func(t *testing.T, ts *testServer, xff string) int {
			t.Helper()
			return ts.request(t, "GET", "/api/v1/tutorials", wrong, "", "X-Forwarded-For", xff).status
		}

		t.Run("off: X-Forwarded-For is ignored", func(t *testing.T) {
			ts := newTestServerWith(t, e, limitedConfig(t, 1, 2))
			exhaust(t, ts, "203.0.113.1")
			if got := statusFrom(t, ts, "203.0.113.2"); got != http.StatusTooManyRequests {
				t.Errorf("a new X-Forwarded-For got %d: a client could escape the limit by sending one", got)
			}
		})
		t.Run("on: the address the proxy added counts", func(t *testing.T) {
			cfg := limitedConfig(t, 1, 2)
			cfg.trustProxy = true
			ts := newTestServerWith(t, e, cfg)
			exhaust(t, ts, "198.51.100.7, 203.0.113.1")
			if got := statusFrom(t, ts, "198.51.100.8, 203.0.113.1"); got != http.StatusTooManyRequests {
				t.Errorf("a forged entry before the proxy's got %d: the client chose its own bucket", got)
			}
			if got := statusFrom(t, ts, "203.0.113.1, 203.0.113.2"); got != http.StatusUnauthorized {
				t.Errorf("another client behind the proxy got %d, want 401", got)
			}
		})
	})
}

// TestIdleBucketsAreDropped sends failed authentications from 100,000
// distinct addresses through the real middleware, then lets ten minutes pass
// on the clock: the buckets go, and memory does not grow with the number of
// clients the server has ever seen.
func TestIdleBucketsAreDropped(t *testing.T) {
	clock := newFakeClock(t)
	auth := newAuthenticator(limitedConfig(t, 10, 20), nil, nil, lastused.New(), clock.now)
	h := auth.requireKey(scopeRead, http.NotFoundHandler())
	fail := func(addr string) {
		r := httptest.NewRequest("GET", "/api/v1/tutorials", nil)
		r.RemoteAddr = addr + ":1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", addr, w.Code)
		}
	}

	const clients = 100_000
	for i := range clients {
		fail(fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff))
	}
	if n := auth.failures.Len(); n != clients {
		t.Fatalf("%d buckets after %d clients, want one each", n, clients)
	}

	clock.advance(ratelimit.IdleAfter - time.Minute)
	fail("192.0.2.1") // a client that is still active when the others go idle
	clock.advance(time.Minute)
	fail("192.0.2.2") // this request sweeps
	if n := auth.failures.Len(); n != 2 {
		t.Errorf("%d buckets once the %d idle ones are swept, want 2 (the recent clients)", n, clients)
	}
}

// TestRequestRefusedForItsRateWritesNothing: a 429 comes before the
// handler, so a refused write leaves the database as it was.
func TestRequestRefusedForItsRateWritesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWith(t, e, limitedConfig(t, 0.1, 1))
		ts.create(t, map[string]any{"title": "a", "slug": "a"})
		ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title":"b","slug":"b"}`).wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		ts.request(t, "DELETE", "/api/v1/tutorials/a", ts.writeKey, "").wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
		got := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, ""))
		if diff := cmp.Diff([]string{"a"}, slugs(got.Tutorials)); diff != "" {
			t.Errorf("tutorials after two refused writes (-want +got):\n%s", diff)
		}
	})
}

func TestRateLimitOff(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e) // testConfig: -rate 0
		for range 50 {
			resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
			if resp.status != http.StatusOK {
				t.Fatalf("%d %q, want 200 with limiting off", resp.status, resp.error)
			}
			if diff := cmp.Diff(limitHeaders{}, limitHeadersOf(resp)); diff != "" {
				t.Fatalf("headers with limiting off (-want +got):\n%s", diff)
			}
		}
	})
}

func TestServeConfigRateLimitFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", nil, nil, config{addr: ":8080", db: "tutorials.db", rate: 10, burst: 20, logFormat: "text"}, ""},
		{"flags", []string{"-rate", "0.5", "-burst", "3", "-trust-proxy"}, nil,
			config{addr: ":8080", db: "tutorials.db", rate: 0.5, burst: 3, logFormat: "text", trustProxy: true}, ""},
		{"rate 0 turns limiting off", []string{"-rate", "0"}, nil,
			config{addr: ":8080", db: "tutorials.db", rate: 0, burst: 20, logFormat: "text"}, ""},
		{"environment", nil, map[string]string{"TUTORIALS_RATE": "2", "TUTORIALS_BURST": "4", "TUTORIALS_TRUST_PROXY": "true"},
			config{addr: ":8080", db: "tutorials.db", rate: 2, burst: 4, logFormat: "text", trustProxy: true}, ""},
		{"flag beats environment", []string{"-trust-proxy=false"}, map[string]string{"TUTORIALS_TRUST_PROXY": "1"},
			config{addr: ":8080", db: "tutorials.db", rate: 10, burst: 20, logFormat: "text"}, ""},
		{"bad TUTORIALS_TRUST_PROXY", nil, map[string]string{"TUTORIALS_TRUST_PROXY": "yes please"}, config{},
			`TUTORIALS_TRUST_PROXY: "yes please" is not a valid -trust-proxy`},
		{"negative rate", []string{"-rate", "-1"}, nil, config{}, "-rate must be a number, 0 or more"},
		{"burst of 0", []string{"-burst", "0"}, nil, config{}, "-burst must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServeConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// A key may carry its own limit, which replaces the server's for it: it
// applies even when the server's is off, changes from the next request when
// "keys set-limit" runs in another process, and goes back to the server's
// with -default.
func TestAKeyMayCarryItsOwnLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e) // the server's limiting is off: testConfig has -rate 0
		key, rec, err := issueKey(context.Background(), ts.store, APIKey{Name: "seeder", Scope: scopeWrite,
			Limit: &KeyLimit{Rate: 1, Burst: 2}, CreatedAt: ts.clock.now()})
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprint(rec.ID)
		type answer struct {
			Status  int
			Headers limitHeaders
		}
		send := func(n int) []answer {
			t.Helper()
			var got []answer
			for range n {
				resp := ts.request(t, "GET", "/api/v1/tutorials", key, "")
				got = append(got, answer{resp.status, limitHeadersOf(resp)})
			}
			return got
		}
		setLimit := func(args ...string) {
			t.Helper()
			if _, _, err := runCommand(t, append([]string{"keys", "set-limit", id, "-db", ts.db}, args...)...); err != nil {
				t.Fatal(err)
			}
		}
		unlimited := answer{http.StatusOK, limitHeaders{}}

		steps := []struct {
			name string
			do   func()
			n    int
			want []answer
		}{
			{"its own limit, with the server's off", func() {}, 3, []answer{
				{200, limitHeaders{`"key";q=2;w=2`, `"key";r=1;t=1`, ""}},
				{200, limitHeaders{`"key";q=2;w=2`, `"key";r=0;t=2`, ""}},
				{429, limitHeaders{`"key";q=2;w=2`, `"key";r=0;t=2`, "1"}},
			}},
			{"set-limit -rate 0: no limit", func() { setLimit("-rate", "0") }, 5,
				[]answer{unlimited, unlimited, unlimited, unlimited, unlimited}},
			// The bucket keeps what it held: a second at the old rate refilled
			// one request, which the new limit then spends.
			{"set-limit -rate 10 -burst 3, a second later", func() {
				setLimit("-rate", "10", "-burst", "3")
				ts.clock.advance(time.Second)
			}, 2, []answer{
				{200, limitHeaders{`"key";q=3;w=1`, `"key";r=0;t=1`, ""}},
				{429, limitHeaders{`"key";q=3;w=1`, `"key";r=0;t=1`, "1"}},
			}},
			{"and a second after that, at the new rate", func() { ts.clock.advance(time.Second) }, 4, []answer{
				{200, limitHeaders{`"key";q=3;w=1`, `"key";r=2;t=1`, ""}},
				{200, limitHeaders{`"key";q=3;w=1`, `"key";r=1;t=1`, ""}},
				{200, limitHeaders{`"key";q=3;w=1`, `"key";r=0;t=1`, ""}},
				{429, limitHeaders{`"key";q=3;w=1`, `"key";r=0;t=1`, "1"}},
			}},
			{"set-limit -default: the server's, which is off", func() { setLimit("-default") }, 3,
				[]answer{unlimited, unlimited, unlimited}},
		}
		for _, step := range steps {
			step.do()
			if diff := cmp.Diff(step.want, send(step.n)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", step.name, diff)
			}
		}
		// The other key never had a limit, and the server's is off.
		if diff := cmp.Diff(limitHeaders{}, limitHeadersOf(ts.request(t, "GET", "/api/v1/tutorials", ts.writeKey, ""))); diff != "" {
			t.Errorf("a key without a limit of its own (-want +got):\n%s", diff)
		}
	})
}

// A key's own "no limit" holds when the server limits every other key.
func TestAKeyWithoutLimitIsNotLimitedByTheServer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWith(t, e, limitedConfig(t, 1, 1))
		key, _, err := issueKey(context.Background(), ts.store, APIKey{Name: "seeder", Scope: scopeWrite,
			Limit: &KeyLimit{}, CreatedAt: ts.clock.now()})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			resp := ts.request(t, "GET", "/api/v1/tutorials", key, "")
			if resp.status != http.StatusOK || resp.header.Get("RateLimit") != "" {
				t.Fatalf("request %d: %d with RateLimit %q, want 200 and no limit", i, resp.status, resp.header.Get("RateLimit"))
			}
		}
		ts.request(t, "GET", "/api/v1/tutorials", ts.writeKey, "")
		ts.request(t, "GET", "/api/v1/tutorials", ts.writeKey, "").wantError(t, http.StatusTooManyRequests, "Rate limit exceeded")
	})
}
