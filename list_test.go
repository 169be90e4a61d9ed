package main

// Tests of what keeps every list and search request's cost the same
// however large the library grows (issue 16). The bounds are lowered so
// that a few tutorials reach them.

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newTestServerWithBounds starts the API on a fresh database whose store
// keeps to bounds instead of the program's.
func newTestServerWithBounds(t *testing.T, change func(*listBounds)) *testServer {
	t.Helper()
	ts := newTestDatabase(t)
	change(&ts.store.(*sqliteStore).bounds)
	return serveTestDatabase(t, ts, testConfig(t))
}

// ---- The words of a prefix ----

// The last word of a search is looked up in tutorials_terms, the words of
// the index (migration 8). A tutorial written with plain SQL, behind the
// server's back, must be found by the prefix of its words all the same:
// before the server's next write folds them in, by FTS5's own prefix
// query, and after it, by the words looked up.
func TestSearchFindsThePrefixOfWordsWrittenBehindTheServersBack(t *testing.T) {
	ts := newTestServer(t)
	ts.exec(t, `INSERT INTO tutorials (title, slug, published_at, created_at, updated_at)
		VALUES ('Zymurgy for brewers', 'zymurgy', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`)
	find := func() []string {
		t.Helper()
		found, _ := ts.search(t, "q=zymur")
		return found
	}
	if diff := cmp.Diff([]string{"zymurgy"}, find()); diff != "" {
		t.Errorf("before the server wrote (-want +got):\n%s", diff)
	}
	ts.create(t, map[string]any{"title": "Another", "slug": "another"})
	if diff := cmp.Diff([]string{"zymurgy"}, find()); diff != "" {
		t.Errorf("after the server wrote (-want +got):\n%s", diff)
	}
	checkSearchIndex(t, ts.dbPath)
}

// A prefix that starts more words than the store looks up by name is
// answered by FTS5's own prefix query: every match, never the first few
// words' only.
func TestSearchPrefixOfMoreWordsThanLookedUp(t *testing.T) {
	ts := newTestServerWithBounds(t, func(b *listBounds) { b.expansions = 2 })
	for _, slug := range []string{"brewing", "brewer", "brewery"} {
		ts.create(t, map[string]any{"title": slug, "slug": slug})
	}
	tests := []struct {
		q    string
		want []string
	}{
		{"brew", []string{"brewery", "brewer", "brewing"}}, // three words: FTS5's prefix query
		{"brewer", []string{"brewery", "brewer"}},          // two words, looked up
		{"brewery", []string{"brewery"}},                   // one
		{"brewers", []string{}},                            // none
	}
	for _, tt := range tests {
		found, _ := ts.search(t, "q="+url.QueryEscape(tt.q))
		if diff := cmp.Diff(tt.want, found); diff != "" {
			t.Errorf("q=%s (-want +got):\n%s", tt.q, diff)
		}
	}
}
