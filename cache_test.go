package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ---- Encoding a response once, and keeping it ----

// encodeEnvelope must write exactly what writeEnvelope writes, and the ETag
// that tutorialETag computes (If-Match compares against that one).
func TestEncodeEnvelopeMatchesWriteEnvelope(t *testing.T) {
	tut := Tutorial{TutorialSummary: TutorialSummary{
		Slug: "go", Title: `Go <fast> & "quoted"`, Category: "lang",
		PublishedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
	}, Content: "line\nbreak, ünïcode, \u2028"}
	for _, status := range []int{http.StatusOK, http.StatusCreated} {
		rec := httptest.NewRecorder()
		writeJSON(rec, status, tut)

		body, etag, err := encodeEnvelope(status, tut)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rec.Body.String(), string(body)); diff != "" {
			t.Errorf("status %d: body differs from writeEnvelope's (-want +got):\n%s", status, diff)
		}
		want, err := tutorialETag(tut)
		if err != nil {
			t.Fatal(err)
		}
		if etag != want {
			t.Errorf("status %d: ETag %s, tutorialETag %s", status, etag, want)
		}
	}
}

// A list answered from the cache must still change on the very next
// request after a commit by anyone: here another Store on the same file,
// as another process would be.
func TestListCacheSeesWritesFromAnotherConnection(t *testing.T) {
	ts := newTestServer(t)
	ts.create(t, map[string]any{"title": "First", "slug": "first"})
	before := ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, "")
	again := ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, "")
	if diff := cmp.Diff(string(before.body), string(again.body)); diff != "" {
		t.Fatalf("the same list twice differs (-first +second):\n%s", diff)
	}
	for _, h := range []string{"ETag", "Link"} {
		if before.header.Get(h) != again.header.Get(h) {
			t.Errorf("%s: %q then %q", h, before.header.Get(h), again.header.Get(h))
		}
	}

	other, err := OpenStore(context.Background(), ts.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.CreateTutorial(context.Background(), TutorialInput{Title: "Second", Slug: "second", Difficulty: "beginner"}, time.Now()); err != nil {
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
	if want := `</api/v1/tutorials?page=1&per_page=1>; rel="first", </api/v1/tutorials?page=2&per_page=1>; rel="next", </api/v1/tutorials?page=2&per_page=1>; rel="last"`; after.header.Get("Link") != want {
		t.Errorf("Link = %q, want %q", after.header.Get("Link"), want)
	}
	// And the new answer is cached in its turn: a 304 for its own ETag.
	if resp := ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, "", "If-None-Match", after.header.Get("ETag")); resp.status != http.StatusNotModified {
		t.Errorf("If-None-Match with the new ETag: status %d, want 304", resp.status)
	}
}

// A bad query is never cached: it fails the same way every time.
func TestListCacheKeepsRejectingBadQueries(t *testing.T) {
	ts := newTestServer(t)
	for range 2 {
		ts.request(t, "GET", "/api/v1/tutorials?page=0", ts.readKey, "").wantError(t, http.StatusBadRequest, "page must be an integer of at least 1")
	}
}

func TestResponseCache(t *testing.T) {
	resp := func(body string) cachedResponse { return cachedResponse{body: []byte(body), etag: `"` + body + `"`} }
	type lookup struct {
		key     string
		version int64
		want    string // "" for a miss
	}
	check := func(t *testing.T, c *responseCache, lookups []lookup) {
		t.Helper()
		for _, l := range lookups {
			got, ok := c.get(l.key, l.version)
			if !ok {
				got = cachedResponse{}
			}
			if string(got.body) != l.want {
				t.Errorf("get(%q, %d) = %q, want %q", l.key, l.version, got.body, l.want)
			}
		}
	}

	t.Run("an entry is served only at the version it was read at", func(t *testing.T) {
		c := &responseCache{maxEntries: 10, maxBytes: 100}
		c.put("a", 1, resp("A1"))
		check(t, c, []lookup{{"a", 1, "A1"}, {"a", 2, ""}, {"b", 1, ""}})
		c.put("b", 2, resp("B2")) // a new version forgets the old one's entries
		check(t, c, []lookup{{"a", 1, ""}, {"a", 2, ""}, {"b", 2, "B2"}})
	})
	t.Run("when full it keeps what it has and takes nothing more", func(t *testing.T) {
		c := &responseCache{maxEntries: 2, maxBytes: 100}
		c.put("a", 1, resp("A"))
		c.put("b", 1, resp("B"))
		c.put("c", 1, resp("C"))
		check(t, c, []lookup{{"a", 1, "A"}, {"b", 1, "B"}, {"c", 1, ""}})

		c = &responseCache{maxEntries: 10, maxBytes: 5}
		c.put("a", 1, resp("AAA"))
		c.put("b", 1, resp("BBB")) // 6 bytes in all: over
		c.put("c", 1, resp("CC"))  // 5: fits
		check(t, c, []lookup{{"a", 1, "AAA"}, {"b", 1, ""}, {"c", 1, "CC"}})
		c.put("d", 2, resp("DDDDD")) // a new version starts from 0 bytes
		check(t, c, []lookup{{"a", 2, ""}, {"d", 2, "DDDDD"}})
	})
}

// The cache gives way to this server's own writes too, not only another
// connection's.
func TestListCacheSeesThisServersWrites(t *testing.T) {
	ts := newTestServer(t)
	ts.create(t, map[string]any{"title": "One", "slug": "one"})
	ts.create(t, map[string]any{"title": "Two", "slug": "two"})
	list := func() []string {
		t.Helper()
		return slugs(decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")).Tutorials)
	}
	list()
	list() // served from memory now
	ts.request(t, "DELETE", "/api/v1/tutorials/two", ts.writeKey, "")
	if diff := cmp.Diff([]string{"one"}, list()); diff != "" {
		t.Errorf("after a delete (-want +got):\n%s", diff)
	}
}

func TestCachedEmptyListIsStillAnEmptyArray(t *testing.T) {
	ts := newTestServer(t)
	for range 2 {
		resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
		if !strings.Contains(string(resp.data), `"tutorials":[]`) {
			t.Errorf("data = %s, want an empty array of tutorials", resp.data)
		}
	}
}
