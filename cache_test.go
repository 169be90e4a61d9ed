package main

// The server's caches held to their promises through real requests: an
// answer from memory is one the database gave since its last commit, a
// repeated request does not reach the store, and memory stays bounded.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ---- Encoding a response once, and keeping it ----

// encodeEnvelope and encodeTutorial must write exactly what writeEnvelope
// writes, and encodeTutorial the ETag that tutorialETag computes (If-Match
// compares against that one).
func TestEncodeEnvelopeMatchesWriteEnvelope(t *testing.T) {
	tut := Tutorial{TutorialSummary: TutorialSummary{
		ID: 7, Slug: "go", Title: `Go <fast> & "quoted"`, Category: "lang",
		PublishedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
	}, Content: "line\nbreak, ünïcode, \u2028", Version: 3}
	for _, status := range []int{http.StatusOK, http.StatusCreated} {
		rec := httptest.NewRecorder()
		writeJSON(rec, status, tut)

		body, _, err := encodeEnvelope(status, tut)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rec.Body.String(), string(body)); diff != "" {
			t.Errorf("status %d: body differs from writeEnvelope's (-want +got):\n%s", status, diff)
		}
		body, etag, err := encodeTutorial(status, tut)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rec.Body.String(), string(body)); diff != "" {
			t.Errorf("status %d: encodeTutorial's body differs from writeEnvelope's (-want +got):\n%s", status, diff)
		}
		if want := tutorialETag(tut); etag != want {
			t.Errorf("status %d: ETag %s, tutorialETag %s", status, etag, want)
		}
	}
}

// countingStore is the real store, counting the reads that the server's
// caches are there to spare, so that a test can tell an answer from memory
// from one from the database. Every test server's store is one (see
// newTestServerWith): a decorator over the real store of either engine,
// not a mock.
//
// It also counts how often the version moved. A cache must read again
// once it has: after any commit, and also when SQLite's checkpointer, on
// its own one-second ticker, empties the WAL, which SQLite counts as a
// change. Only such a move excuses a read.
type countingStore struct {
	Store

	mu          sync.Mutex
	calls       storeCalls
	lastVersion int64
}

// storeCalls are the counts of a countingStore.
type storeCalls struct {
	TutorialBySlug, ListTutorials, KeyByHash int
	VersionMoves                             int
}

func (s *countingStore) count(f func(*storeCalls)) {
	s.mu.Lock()
	f(&s.calls)
	s.mu.Unlock()
}

// snapshot returns the counts so far.
func (s *countingStore) snapshot() storeCalls {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *countingStore) TutorialBySlug(ctx context.Context, slug string) (Tutorial, error) {
	s.count(func(c *storeCalls) { c.TutorialBySlug++ })
	return s.Store.TutorialBySlug(ctx, slug)
}

func (s *countingStore) ListTutorials(ctx context.Context, p ListParams) (TutorialList, error) {
	s.count(func(c *storeCalls) { c.ListTutorials++ })
	return s.Store.ListTutorials(ctx, p)
}

func (s *countingStore) KeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	s.count(func(c *storeCalls) { c.KeyByHash++ })
	return s.Store.KeyByHash(ctx, hash)
}

func (s *countingStore) Version(ctx context.Context) (int64, error) {
	v, err := s.Store.Version(ctx)
	if err == nil {
		s.mu.Lock()
		if v != s.lastVersion {
			s.calls.VersionMoves++
			s.lastVersion = v
		}
		s.mu.Unlock()
	}
	return v, err
}

// fromMemory GETs path with key, a request that the server has answered
// before, and fails t unless the server answered it without reading the
// store: the key and the answer both from its caches. When the version
// moved meanwhile the caches had to read again, so the request is sent
// again, a few times at most: a checkpoint empties the WAL once per quiet
// spell, not on every try.
func (ts *testServer) fromMemory(t *testing.T, path, key string, headers ...string) response {
	t.Helper()
	for range 3 {
		before := ts.calls.snapshot()
		resp := ts.request(t, "GET", path, key, "", headers...)
		after := ts.calls.snapshot()
		if after.VersionMoves != before.VersionMoves {
			continue
		}
		if diff := cmp.Diff(before, after); diff != "" {
			t.Errorf("GET %s again: the store was asked, want an answer from memory (-before +after):\n%s", path, diff)
		}
		return resp
	}
	t.Fatalf("GET %s: the version moved on every try", path)
	return response{}
}

// getTwice GETs path twice, and fails unless the second answer came from
// memory with the same body and the same values of headers. It returns the
// first.
func getTwice(t *testing.T, ts *testServer, path string, headers ...string) response {
	t.Helper()
	first := ts.request(t, "GET", path, ts.readKey, "")
	second := ts.fromMemory(t, path, ts.readKey)
	if diff := cmp.Diff(string(first.body), string(second.body)); diff != "" {
		t.Fatalf("GET %s twice: the bodies differ (-first +second):\n%s", path, diff)
	}
	values := func(r response) map[string]string {
		m := make(map[string]string)
		for _, h := range headers {
			m[h] = r.header.Get(h)
		}
		return m
	}
	if diff := cmp.Diff(values(first), values(second)); diff != "" {
		t.Errorf("GET %s twice: the headers differ (-first +second):\n%s", path, diff)
	}
	return first
}

// A list answered from the cache must still change on the very next
// request after a commit by anyone: here another Store on the same
// database, as another process would be.
func TestListCacheSeesWritesFromAnotherConnection(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "First", "slug": "first"})
		before := getTwice(t, ts, "/api/v1/tutorials?per_page=1", "ETag", "Link")

		other, err := OpenStore(context.Background(), ts.db)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, err := other.CreateTutorial(context.Background(), TutorialInput{Title: "Second", Slug: "second", Difficulty: "beginner"}, ts.clock.now()); err != nil {
			t.Fatal(err)
		}

		after := ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, "", "If-None-Match", before.header.Get("ETag"))
		if after.status != http.StatusOK {
			t.Fatalf("after another connection's write, with the old ETag: status %d, want 200", after.status)
		}
		page := decodeData[tutorialPage](t, after)
		if page.Total != 2 || page.TotalPages != 2 {
			t.Errorf("after another connection's write: total %d, total_pages %d, want 2, 2", page.Total, page.TotalPages)
		}
		newest := page.Tutorials[0]
		next := makeCursor("-published_at", formatTime(newest.PublishedAt), newest.ID)
		if want := strings.ReplaceAll(`<{}/api/v1/tutorials?page=1&per_page=1>; rel="first", <{}/api/v1/tutorials?cursor=`+next+`&page=2&per_page=1>; rel="next", <{}/api/v1/tutorials?page=2&per_page=1>; rel="last"`, "{}", ts.url); after.header.Get("Link") != want {
			t.Errorf("Link = %q, want %q", after.header.Get("Link"), want)
		}
		// And the new answer is kept in its turn: a 304 for its own ETag.
		if resp := ts.fromMemory(t, "/api/v1/tutorials?per_page=1", ts.readKey, "If-None-Match", after.header.Get("ETag")); resp.status != http.StatusNotModified {
			t.Errorf("If-None-Match with the new ETag: status %d, want 304", resp.status)
		}
	})
}

// A tutorial answered from the cache must change on the very next request
// after a commit by anyone, here another Store on the same database.
func TestDetailCacheSeesWritesFromAnotherConnection(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "First", "slug": "first"})
		before := getTwice(t, ts, "/api/v1/tutorials/first", "ETag")

		other, err := OpenStore(context.Background(), ts.db)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		changed, err := other.PatchTutorial(context.Background(), "first", TutorialPatch{Title: Some("Changed")}, ts.clock.now(), nil)
		if err != nil {
			t.Fatal(err)
		}

		after := ts.request(t, "GET", "/api/v1/tutorials/first", ts.readKey, "", "If-None-Match", before.header.Get("ETag"))
		if after.status != http.StatusOK {
			t.Fatalf("after another connection's write, with the old ETag: status %d, want 200", after.status)
		}
		changed.Version = 0 // the store's, not a field of the resource
		if diff := cmp.Diff(changed, decodeData[Tutorial](t, after)); diff != "" {
			t.Errorf("after another connection's write (-want +got):\n%s", diff)
		}
		if resp := ts.fromMemory(t, "/api/v1/tutorials/first", ts.readKey, "If-None-Match", after.header.Get("ETag")); resp.status != http.StatusNotModified {
			t.Errorf("If-None-Match with the new ETag: status %d, want 304", resp.status)
		}
	})
}

// Each of this server's own writes reaches the next GET of the tutorial,
// however often it was read before.
func TestDetailCacheSeesThisServersWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		for _, tc := range []struct {
			method, body string
			wantTitle    string // "" for gone
		}{
			{"PATCH", `{"title":"Patched"}`, "Patched"},
			{"PUT", `{"title":"Replaced","slug":"cached"}`, "Replaced"},
			{"DELETE", "", ""},
		} {
			t.Run(tc.method, func(t *testing.T) {
				ts := newTestServer(t, e)
				ts.create(t, map[string]any{"title": "Original", "slug": "cached"})
				getTwice(t, ts, "/api/v1/tutorials/cached")
				if w := ts.request(t, tc.method, "/api/v1/tutorials/cached", ts.writeKey, tc.body); w.status/100 != 2 {
					t.Fatalf("%s: status %d", tc.method, w.status)
				}
				resp := ts.request(t, "GET", "/api/v1/tutorials/cached", ts.readKey, "")
				if tc.wantTitle == "" {
					resp.wantError(t, http.StatusNotFound, "Tutorial not found")
					return
				}
				if got := decodeData[Tutorial](t, resp).Title; got != tc.wantTitle {
					t.Errorf("title after %s = %q, want %q", tc.method, got, tc.wantTitle)
				}
			})
		}
	})
}

// Once the server has had no request for releaseAfter, on its clock, it
// lets go of everything it keeps; the next requests are answered the same,
// from the database.
func TestKeptMemoryIsReleasedWhenIdle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Kept", "slug": "kept"})
		paths := []string{"/api/v1/tutorials", "/api/v1/tutorials/kept"}
		var first []string
		for _, path := range paths {
			first = append(first, string(getTwice(t, ts, path).body))
		}
		// Keys, list and tutorials: the read key and one answer of each.
		held := func() []int {
			return []int{ts.api.keys.Len(), ts.api.answers.list.Len(), ts.api.answers.detail.Len()}
		}
		ts.clock.advance(releaseAfter - time.Nanosecond)
		ts.api.releaseIfIdle()
		if diff := cmp.Diff([]int{1, 1, 1}, held()); diff != "" {
			t.Fatalf("entries held just before releaseAfter, keys, list and detail (-want +got):\n%s", diff)
		}
		ts.clock.advance(time.Nanosecond)
		ts.api.releaseIfIdle()
		if diff := cmp.Diff([]int{0, 0, 0}, held()); diff != "" {
			t.Errorf("entries held after releaseAfter (-want +got):\n%s", diff)
		}

		before := ts.calls.snapshot()
		var again []string
		for _, path := range paths {
			again = append(again, string(ts.request(t, "GET", path, ts.readKey, "").body))
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("answers after the release (-before +after):\n%s", diff)
		}
		after := ts.calls.snapshot()
		if after.KeyByHash == before.KeyByHash || after.ListTutorials == before.ListTutorials || after.TutorialBySlug == before.TutorialBySlug {
			t.Errorf("after the release the store was not asked again: %+v, then %+v", before, after)
		}
	})
}

// A bad query is never cached: it fails the same way every time.
func TestListCacheKeepsRejectingBadQueries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		for range 2 {
			ts.request(t, "GET", "/api/v1/tutorials?page=0", ts.readKey, "").wantError(t, http.StatusBadRequest, "page must be an integer of at least 1")
		}
	})
}

// A kept answer counts every byte it holds, and holds its body in little
// more than its length, not in the room of the buffer it was encoded in.
func TestKeptAnswerHoldsItsBodyInItsLength(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Long", "slug": "long", "content": strings.Repeat("x", 100_000)})
		resp := getTwice(t, ts, "/api/v1/tutorials/long")
		least := len(resp.body) + len(resp.header.Get("ETag")) + len("long")
		if got := ts.api.answers.detail.Bytes(); got < least || got > least+least/8 {
			t.Errorf("the kept answer counts %d bytes, want from %d (body, ETag and slug) to an eighth more", got, least)
		}
	})
}

// The cache gives way to this server's own writes too, not only another
// connection's.
func TestListCacheSeesThisServersWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "One", "slug": "one"})
		ts.create(t, map[string]any{"title": "Two", "slug": "two"})
		list := func() []string {
			t.Helper()
			return slugs(decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")).Tutorials)
		}
		getTwice(t, ts, "/api/v1/tutorials")
		ts.request(t, "DELETE", "/api/v1/tutorials/two", ts.writeKey, "")
		if diff := cmp.Diff([]string{"one"}, list()); diff != "" {
			t.Errorf("after a delete (-want +got):\n%s", diff)
		}
	})
}

func TestCachedEmptyListIsStillAnEmptyArray(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		resp := getTwice(t, ts, "/api/v1/tutorials")
		if !strings.Contains(string(resp.data), `"tutorials":[]`) {
			t.Errorf("data = %s, want an empty array of tutorials", resp.data)
		}
	})
}

// The attack of issue 14: a read key, and 300 lists each with an unknown
// parameter of 60,000 characters, every one different. Unknown parameters
// change nothing in the answer, so one kept answer serves them all, and
// none of them reaches the Link header.
func TestListCacheIgnoresUnknownParameters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.seed(t, 3, nil)
		want := ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, "")
		before := ts.calls.snapshot()
		padding := strings.Repeat("a", 60_000)
		for i := range 300 {
			resp := ts.request(t, "GET", fmt.Sprintf("/api/v1/tutorials?per_page=1&z=%05d%s", i, padding), ts.readKey, "")
			got := [2]string{string(resp.body), resp.header.Get("Link")}
			if diff := cmp.Diff([2]string{string(want.body), want.header.Get("Link")}, got); diff != "" {
				t.Fatalf("request %d: body and Link (-want +got):\n%s", i, diff)
			}
		}
		after := ts.calls.snapshot()
		// A moved version (a checkpoint) excuses a read, as in fromMemory.
		if reads, moves := after.ListTutorials-before.ListTutorials, after.VersionMoves-before.VersionMoves; reads > moves {
			t.Errorf("300 requests read the list %d times (the version moved %d times), want every one from memory", reads, moves)
		}
		if n, size := ts.api.answers.list.Len(), ts.api.answers.list.Bytes(); n != 1 || size > 4<<10 {
			t.Errorf("the list cache holds %d answers in %d bytes, want one of a few KB", n, size)
		}
	})
}

// Distinct known parameters do make entries, each counted whole: a
// category of 60,000 characters is in the key, and in the Link header
// twice (first and last of an empty list). The cache fills to its bound
// and no further.
func TestListCacheCountsEveryByteOfAnEntry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		padding := strings.Repeat("a", 60_000)
		list := ts.api.answers.list
		// Until an answer is not kept, with the version unmoved: the cache is
		// full. (A moved version starts it over, and it fills again.)
		for i := 0; ; i++ {
			if i == 200 {
				t.Fatalf("after %d requests the cache holds %d answers in %d bytes, and still takes more", i, list.Len(), list.Bytes())
			}
			held, moves := list.Len(), ts.calls.snapshot().VersionMoves
			resp := ts.request(t, "GET", fmt.Sprintf("/api/v1/tutorials?category=%05d%s", i, padding), ts.readKey, "")
			if resp.status != http.StatusOK {
				t.Fatalf("request %d: %d %q", i, resp.status, resp.error)
			}
			if list.Len() == held && ts.calls.snapshot().VersionMoves == moves {
				break
			}
		}
		const each = 3 * 60_000 // at least
		n, size := list.Len(), list.Bytes()
		if size > listCacheBytes || size < n*each || size < listCacheBytes-2*each {
			t.Errorf("the list cache holds %d answers in %d bytes; want at least %d bytes each, and full: within %d of its bound of %d",
				n, size, each, 2*each, listCacheBytes)
		}
	})
}

// Two instances on one database, each with caches of its own: what one
// writes, the other answers from its very next request, though it held the
// old answer in memory.
func TestInstancesSeeEachOthersWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		a := newTestServer(t, e)
		b := newTestInstance(t, a, testConfig(t))
		a.create(t, map[string]any{"title": "First", "slug": "first"})
		before := getTwice(t, b, "/api/v1/tutorials/first", "ETag")
		getTwice(t, b, "/api/v1/tutorials")

		changed := decodeData[Tutorial](t, a.request(t, "PATCH", "/api/v1/tutorials/first", a.writeKey, `{"title": "Changed on a"}`))
		after := b.request(t, "GET", "/api/v1/tutorials/first", b.readKey, "", "If-None-Match", before.header.Get("ETag"))
		if diff := cmp.Diff(changed, decodeData[Tutorial](t, after)); diff != "" {
			t.Errorf("b after a's PATCH (-want +got):\n%s", diff)
		}
		a.create(t, map[string]any{"title": "Second", "slug": "second"})
		if got := decodeData[tutorialPage](t, b.request(t, "GET", "/api/v1/tutorials", b.readKey, "")).Total; got != 2 {
			t.Errorf("b's list after a's create: total %d, want 2", got)
		}

		// And back: b deletes, a has the tutorial in memory and must not
		// answer from it.
		getTwice(t, a, "/api/v1/tutorials/second")
		if resp := b.request(t, "DELETE", "/api/v1/tutorials/second", b.writeKey, ""); resp.status != http.StatusNoContent {
			t.Fatalf("DELETE on b: %d %q", resp.status, resp.error)
		}
		a.request(t, "GET", "/api/v1/tutorials/second", a.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
	})
}

// An edit made with plain SQL, as a person in the sqlite3 shell or psql
// makes it, goes through no Store: the caches must not answer from before
// it all the same.
func TestCachesSeeAnEditMadeWithPlainSQL(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Before", "slug": "edited"})
		getTwice(t, ts, "/api/v1/tutorials/edited")
		getTwice(t, ts, "/api/v1/tutorials")

		ts.exec(t, `UPDATE tutorials SET title = $1 WHERE slug = $2`, "After", "edited")
		if got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/edited", ts.readKey, "")).Title; got != "After" {
			t.Errorf("GET after the edit: title %q, want After", got)
		}
		page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, ""))
		if diff := cmp.Diff([]string{"After"}, titles(page.Tutorials)); diff != "" {
			t.Errorf("list after the edit (-want +got):\n%s", diff)
		}
	})
}

// titles are the titles of list, in order.
func titles(list []TutorialSummary) []string {
	var out []string
	for _, tut := range list {
		out = append(out, tut.Title)
	}
	return out
}

// ---- The key cache ----

func TestCachedKeyIsRefusedOnceRevokedElsewhere(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		key, rec, err := issueKey(context.Background(), ts.store, APIKey{Name: "cached", Scope: scopeRead, CreatedAt: ts.clock.now()})
		if err != nil {
			t.Fatal(err)
		}
		// The key is in the cache after the first request: the second is
		// answered without asking the store.
		if resp := ts.request(t, "GET", "/api/v1/tutorials", key, ""); resp.status != http.StatusOK {
			t.Fatalf("before revoking: %d %q", resp.status, resp.error)
		}
		if resp := ts.fromMemory(t, "/api/v1/tutorials", key); resp.status != http.StatusOK {
			t.Fatalf("before revoking, from memory: %d %q", resp.status, resp.error)
		}
		// Revoke with plain SQL on a connection of its own, outside any Store,
		// as any other program could.
		ts.exec(t, `UPDATE api_keys SET active = false WHERE id = $1`, rec.ID)
		ts.request(t, "GET", "/api/v1/tutorials", key, "").wantError(t, http.StatusUnauthorized, "Invalid or inactive API key")
	})
}
