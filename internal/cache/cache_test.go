package cache

// The promises of the package comment, each held by a test that fails when
// it breaks: an entry served only at its version, the version read before
// the data, every byte counted, bounds kept, a release after a quiet spell.

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"tutorials/internal/fakeclock"

	"github.com/google/go-cmp/cmp"
)

// source is a database as a cache sees it: a version, and values loaded
// at the version it is at. It counts the loads.
type source struct {
	mu      sync.Mutex
	version int64
	loads   int
	log     []string // "version" and "load", in the order they were asked
}

func (s *source) Version(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, "version")
	return s.version, nil
}

// load returns a loader of the value of key: key and the version it was
// loaded at.
func (s *source) load(key string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.loads++
		s.log = append(s.log, "load")
		return key + "@" + string(rune('0'+s.version)), nil
	}
}

func (s *source) commit() {
	s.mu.Lock()
	s.version++
	s.mu.Unlock()
}

// newTestCache is a cache of strings on src, with room for 10 entries and
// 1,000 bytes, idle after a minute on clk.
func newTestCache(src *source, clk *fakeclock.Clock) *Cache[string, string] {
	return New(Options[string, string]{
		Version:    src.Version,
		MaxEntries: 10,
		MaxBytes:   1000,
		Size:       func(k, v string) int { return len(k) + len(v) },
		IdleAfter:  time.Minute,
		Now:        clk.Now,
	})
}

// get is c.Get of key, failing t on an error.
func get(t *testing.T, c *Cache[string, string], src *source, key string) string {
	t.Helper()
	v, err := c.Get(context.Background(), key, src.load(key))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGetServesAnEntryOnlyAtTheVersionItWasReadAt(t *testing.T) {
	src := &source{version: 1}
	c := newTestCache(src, fakeclock.New(time.Now()))
	type result struct {
		Value string
		Loads int // in all, after the Get
	}
	for i, s := range []struct {
		commit bool // before the Get
		key    string
		want   result
	}{
		{false, "a", result{"a@1", 1}},
		{false, "a", result{"a@1", 1}}, // from memory
		{false, "b", result{"b@1", 2}},
		{true, "a", result{"a@2", 3}}, // a commit makes every entry stale
		{false, "b", result{"b@2", 4}},
		{false, "a", result{"a@2", 4}},
		{false, "b", result{"b@2", 4}},
	} {
		if s.commit {
			src.commit()
		}
		got := get(t, c, src, s.key)
		if diff := cmp.Diff(s.want, result{got, src.loads}); diff != "" {
			t.Errorf("step %d, Get(%q) (-want +got):\n%s", i, s.key, diff)
		}
	}
}

func TestGetReadsTheVersionBeforeTheData(t *testing.T) {
	src := &source{version: 1}
	c := newTestCache(src, fakeclock.New(time.Now()))
	// A commit lands between the reading of the version and the load: the
	// value is newer than the version it is kept under, never older.
	v, err := c.Get(context.Background(), "a", func(ctx context.Context) (string, error) {
		src.commit()
		return src.load("a")(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v != "a@2" {
		t.Errorf("Get = %q, want a@2", v)
	}
	// The next Get reads version 2, which the entry was not kept under.
	if got := get(t, c, src, "a"); got != "a@2" || src.loads != 2 {
		t.Errorf("Get after the commit = %q with %d loads, want a@2 loaded again (2)", got, src.loads)
	}
	if diff := cmp.Diff([]string{"version", "load", "version", "load"}, src.log); diff != "" {
		t.Errorf("the order of the reads (-want +got):\n%s", diff)
	}
}

// Readers racing a writer never get a value older than the version the
// database had when they asked. A cache that served entries across
// versions would hand them the old one.
func TestNoValueOlderThanTheDatabase(t *testing.T) {
	var current atomic.Int64
	c := New(Options[string, int64]{
		Version:    func(context.Context) (int64, error) { return current.Load(), nil },
		MaxEntries: 10,
		MaxBytes:   1000,
	})
	load := func(context.Context) (int64, error) { return current.Load(), nil }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				current.Add(1)
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				before := current.Load()
				got, _ := c.Get(context.Background(), "k", load)
				if got < before {
					t.Errorf("Get = version %d, asked at version %d", got, before)
					return
				}
			}
		})
	}
	for range 2000 {
		if _, err := c.Get(context.Background(), "k", load); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestErrorsAreNotKept(t *testing.T) {
	src := &source{version: 1}
	c := newTestCache(src, fakeclock.New(time.Now()))
	missing := errors.New("not found")
	loads := 0
	for range 2 {
		_, err := c.Get(context.Background(), "gone", func(context.Context) (string, error) {
			loads++
			return "", missing
		})
		if !errors.Is(err, missing) {
			t.Errorf("Get = %v, want the load's error", err)
		}
	}
	if loads != 2 || c.Len() != 0 {
		t.Errorf("after two failed loads: %d loads, %d entries; want 2 loads and nothing kept", loads, c.Len())
	}

	versionDown := errors.New("database unavailable")
	c = New(Options[string, string]{
		Version:    func(context.Context) (int64, error) { return 0, versionDown },
		MaxEntries: 10, MaxBytes: 1000,
	})
	_, err := c.Get(context.Background(), "a", func(context.Context) (string, error) {
		t.Error("load called without a version")
		return "", nil
	})
	if !errors.Is(err, versionDown) {
		t.Errorf("Get = %v, want the version's error", err)
	}
}

func TestBounds(t *testing.T) {
	// A string is 16 bytes itself on 64-bit machines: every entry of a
	// cache of strings holds 32 bytes besides what Size counts.
	const fixed = 32
	tests := []struct {
		name                 string
		maxEntries, maxBytes int
		keys                 []string
		kept                 []string
	}{
		{"room for all", 10, 1000, []string{"a", "b"}, []string{"a", "b"}},
		{"full by entries: the first are kept", 2, 1000, []string{"a", "b", "c"}, []string{"a", "b"}},
		// "aaaa" and its value "aaaa@1" hold fixed+10 bytes.
		{"full by bytes: what does not fit is not kept", 10, 2*fixed + 20, []string{"aaaa", "bbbbb", "cccc"}, []string{"aaaa", "cccc"}},
		{"every byte counts: the key's too", 10, fixed + 9, []string{"aaaa"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &source{version: 1}
			c := New(Options[string, string]{
				Version:    src.Version,
				MaxEntries: tt.maxEntries,
				MaxBytes:   tt.maxBytes,
				Size:       func(k, v string) int { return len(k) + len(v) },
			})
			for _, k := range tt.keys {
				get(t, c, src, k)
			}
			var kept []string
			wantBytes := 0
			for _, k := range tt.keys {
				before := src.loads
				get(t, c, src, k)
				if src.loads == before {
					kept = append(kept, k)
					wantBytes += fixed + len(k) + len(k+"@1")
				}
			}
			if diff := cmp.Diff(tt.kept, kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if c.Bytes() != wantBytes || c.Len() != len(kept) {
				t.Errorf("holds %d entries of %d bytes, want %d of %d", c.Len(), c.Bytes(), len(kept), wantBytes)
			}
		})
	}

	t.Run("a new version starts from nothing", func(t *testing.T) {
		src := &source{version: 1}
		c := New(Options[string, string]{Version: src.Version, MaxEntries: 1, MaxBytes: 1000})
		get(t, c, src, "a")
		src.commit()
		get(t, c, src, "b")
		if got := get(t, c, src, "b"); got != "b@2" || src.loads != 2 || c.Len() != 1 {
			t.Errorf("b = %q after %d loads, %d entries: want b@2 kept, 2 loads, 1 entry", got, src.loads, c.Len())
		}
	})
}

func TestReleaseIfIdle(t *testing.T) {
	src := &source{version: 1}
	clk := fakeclock.New(time.Now())
	c := newTestCache(src, clk)
	held := func() [2]int { return [2]int{c.Len(), c.Bytes()} }

	get(t, c, src, "a")
	full := held()
	clk.Advance(time.Minute - time.Nanosecond)
	if c.ReleaseIfIdle() || held() != full {
		t.Fatalf("released before a quiet minute: holds %v, want %v", held(), full)
	}
	get(t, c, src, "a") // a Get starts the quiet spell over
	clk.Advance(time.Minute - time.Nanosecond)
	if c.ReleaseIfIdle() || held() != full {
		t.Fatalf("released a minute after the first Get, not the last: holds %v, want %v", held(), full)
	}
	clk.Advance(time.Nanosecond)
	if !c.ReleaseIfIdle() || held() != [2]int{0, 0} {
		t.Errorf("after a quiet minute: holds %v, want nothing", held())
	}
	if c.ReleaseIfIdle() {
		t.Error("an empty cache was released again")
	}
	if get(t, c, src, "a"); c.Len() != 1 || src.loads != 2 {
		t.Errorf("after the release: %d entries, %d loads; want it loaded again and kept", c.Len(), src.loads)
	}

	never := New(Options[string, string]{Version: src.Version, MaxEntries: 1, MaxBytes: 1000, Now: clk.Now})
	get(t, never, src, "a")
	clk.Advance(1000 * time.Hour)
	if never.ReleaseIfIdle() || never.Len() != 1 {
		t.Error("a cache with no IdleAfter was released")
	}
}

func TestClear(t *testing.T) {
	src := &source{version: 1}
	c := newTestCache(src, fakeclock.New(time.Now()))
	get(t, c, src, "a")
	c.Clear()
	if c.Len() != 0 || c.Bytes() != 0 {
		t.Errorf("after Clear: %d entries, %d bytes", c.Len(), c.Bytes())
	}
	get(t, c, src, "a")
	if c.Len() != 1 || src.loads != 2 {
		t.Errorf("after Clear and a Get: %d entries, %d loads; want it loaded again and kept", c.Len(), src.loads)
	}
}

func TestReserveMemoryLeavesGOMEMLIMITToTheOperator(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // a negative limit only reads it
	for _, tc := range []struct {
		gomemlimit string
		raised     bool
	}{
		{"", true},
		{"off", false},
		{"200MiB", false},
	} {
		const before = 1 << 40
		debug.SetMemoryLimit(before)
		reserved.Lock()
		want := memoryHeadroom + reserved.bytes + 5<<20
		reserved.Unlock()
		if !tc.raised {
			want = before
		}
		reserveMemory(5<<20, func(k string) string { return map[string]string{"GOMEMLIMIT": tc.gomemlimit}[k] })
		if got := debug.SetMemoryLimit(-1); got != want {
			t.Errorf("GOMEMLIMIT=%q: limit %d, want %d", tc.gomemlimit, got, want)
		}
	}
}
