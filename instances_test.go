package main

// Several instances on one database: what a client sees is the same
// whichever instance answers. Each test starts two servers on one database
// (newTestInstance), each with its own store (its own pool and version
// readings), caches, rate-limit buckets and key usage, as two processes
// behind a load balancer would have; on SQLite, two stores on one file, as
// two processes would open it. That each sees the other's writes through
// its caches is TestInstancesSeeEachOthersWrites, in cache_test.go.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// twoInstances starts two servers on one fresh database of engine e.
func twoInstances(t *testing.T, e engine) (a, b *testServer) {
	t.Helper()
	a = newTestServer(t, e)
	return a, newTestInstance(t, a, testConfig(t))
}

func TestRevokedKeyIsRefusedByEveryInstance(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		a, b := twoInstances(t, e)
		for _, ts := range []*testServer{a, b} { // both have the key cached
			if resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, ""); resp.status != http.StatusOK {
				t.Fatalf("before revoking: %d", resp.status)
			}
		}
		if _, _, err := runCommand(t, "keys", "revoke", "-db", a.db, "2"); err != nil { // the read key
			t.Fatalf("keys revoke: %v", err)
		}
		for name, ts := range map[string]*testServer{"a": a, "b": b} {
			resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
			if resp.status != http.StatusUnauthorized {
				t.Errorf("%s, the request after the revocation: %d %q, want 401", name, resp.status, resp.error)
			}
		}
	})
}

// concurrently runs n calls of f at once, spreading them over instances,
// and returns the statuses they got, sorted.
func concurrently(t *testing.T, instances []*testServer, n int, f func(ts *testServer, i int) int) []int {
	t.Helper()
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = f(instances[i%len(instances)], i)
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(statuses)
	return statuses
}

func TestOneSlugOverTwoInstancesIsCreatedOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		a, b := twoInstances(t, e)
		got := concurrently(t, []*testServer{a, b}, 16, func(ts *testServer, i int) int {
			body := fmt.Sprintf(`{"title":"Writer %d","slug":"contested"}`, i)
			return ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body, "Content-Type", "application/json").status
		})
		want := append([]int{http.StatusCreated}, slices.Repeat([]int{http.StatusConflict}, 15)...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		if n := a.count(t); n != 1 {
			t.Errorf("%d tutorials, want 1", n)
		}
	})
}

func TestWritersOverTwoInstancesAreAllKept(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		a, b := twoInstances(t, e)
		const writers, creates = 8, 40
		got := concurrently(t, []*testServer{a, b}, writers, func(ts *testServer, w int) int {
			for i := range creates {
				body := fmt.Sprintf(`{"title":"Writer %d, %d","slug":"w%d-%d"}`, w, i, w, i)
				if resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body, "Content-Type", "application/json"); resp.status != http.StatusCreated {
					return resp.status
				}
			}
			return http.StatusCreated
		})
		if diff := cmp.Diff(slices.Repeat([]int{http.StatusCreated}, writers), got); diff != "" {
			t.Errorf("writers' statuses (-want +got):\n%s", diff)
		}
		for name, ts := range map[string]*testServer{"a": a, "b": b} {
			if n := ts.count(t); n != writers*creates {
				t.Errorf("%s counts %d tutorials, want %d", name, n, writers*creates)
			}
		}
	})
}

func TestOneEditorWinsOverTwoInstances(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		a, b := twoInstances(t, e)
		a.create(t, map[string]any{"title": "Edited", "slug": "edited"})
		etag := b.request(t, "GET", "/api/v1/tutorials/edited", b.readKey, "").header.Get("ETag")
		got := concurrently(t, []*testServer{a, b}, 8, func(ts *testServer, i int) int {
			body := fmt.Sprintf(`{"title":"Editor %d"}`, i)
			return ts.request(t, "PATCH", "/api/v1/tutorials/edited", ts.writeKey, body,
				"Content-Type", "application/json", "If-Match", etag).status
		})
		want := append([]int{http.StatusOK}, slices.Repeat([]int{http.StatusPreconditionFailed}, 7)...)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("editors' statuses (-want +got):\n%s", diff)
		}
	})
}

func TestLastUsedFromTwoInstancesMerges(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		a, b := twoInstances(t, e)
		ctx := context.Background()
		// The write key is id 1: b saw it last, but a saves after b.
		early := a.clock.now().Truncate(time.Second)
		late := early.Add(time.Minute)
		a.usage.Touch(1, early)
		b.usage.Touch(1, late)
		for _, ts := range []*testServer{b, a} {
			if err := ts.usage.Save(ctx, ts.store.SaveLastUsed); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := a.store.APIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := keys[0].LastUsedAt; !got.Equal(late) {
			t.Errorf("last_used_at %v, want b's later %v: a's earlier save must not move it back", got, late)
		}
	})
}

// Rate limits are per instance (README, "What is per instance"): a key may
// spend its burst at each, and a refusal at one does not touch the other.
func TestRateLimitsArePerInstance(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		cfg := testConfig(t)
		cfg.rate, cfg.burst = 1, 3
		a := newTestServerWith(t, e, cfg)
		b := newTestInstance(t, a, cfg)
		// The fake clock stands still: no token comes back during the test.
		for name, ts := range map[string]*testServer{"a": a, "b": b} {
			var got []int
			for range cfg.burst + 1 {
				got = append(got, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "").status)
			}
			want := []int{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusTooManyRequests}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("instance %s (-want +got):\n%s", name, diff)
			}
		}
	})
}

// Instances that start at once on a new database migrate it once: the
// migrations run under an advisory lock, and each finds what the one before
// it did.
func TestInstancesStartingAtOnceMigrateOnce(t *testing.T) {
	db := newTestDB(t, postgresEngine)
	const instances = 5
	errs := make([]error, instances)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range instances {
		wg.Go(func() {
			<-start
			store, err := OpenStore(context.Background(), db)
			if err == nil {
				err = store.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	if diff := cmp.Diff(make([]error, instances), errs, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("opening %d stores at once (-want +got):\n%s", instances, diff)
	}
	var version int
	if err := openSQL(t, db).QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if want := strings.Count(postgresSchema, "\n-- migration "); version != want {
		t.Errorf("schema_version %d, want %d", version, want)
	}
}
