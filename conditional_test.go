package main

// These tests hold ETags, If-None-Match and If-Match to the contract, on
// both engines, concurrent editors and edits in a database shell included.

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ---- Conditional requests: ETag, If-None-Match, If-Match ----

// etag returns the ETag of a GET of path, checking that it is strong.
func (ts *testServer) etag(t *testing.T, path string) string {
	t.Helper()
	resp := ts.request(t, "GET", path, ts.readKey, "")
	if resp.status != http.StatusOK {
		t.Fatalf("GET %s: %d %q", path, resp.status, resp.error)
	}
	etag := resp.header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 3 {
		t.Fatalf("GET %s: ETag = %q, want a strong, quoted entity tag", path, etag)
	}
	return etag
}

func TestETag(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		created := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title": "Go", "slug": "go"}`)
		detail := ts.etag(t, "/api/v1/tutorials/go")

		t.Run("a GET answers the same ETag until the tutorial changes", func(t *testing.T) {
			if again := ts.etag(t, "/api/v1/tutorials/go"); again != detail {
				t.Errorf("second GET: ETag %s, first %s", again, detail)
			}
		})
		t.Run("a write answers the ETag of what it stored", func(t *testing.T) {
			if got := created.header.Get("ETag"); got != detail {
				t.Errorf("POST: ETag %s, GET %s", got, detail)
			}
			patched := ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"excerpt": "new"}`)
			if got, want := patched.header.Get("ETag"), ts.etag(t, "/api/v1/tutorials/go"); got != want {
				t.Errorf("PATCH: ETag %s, GET %s", got, want)
			}
		})
		t.Run("HEAD answers the ETag of GET", func(t *testing.T) {
			want := ts.etag(t, "/api/v1/tutorials/go")
			if got := ts.request(t, "HEAD", "/api/v1/tutorials/go", ts.readKey, "").header.Get("ETag"); got != want {
				t.Errorf("HEAD: ETag %s, GET %s", got, want)
			}
		})
		t.Run("the list has one, and it differs from the detail's", func(t *testing.T) {
			if list := ts.etag(t, "/api/v1/tutorials"); list == ts.etag(t, "/api/v1/tutorials/go") {
				t.Errorf("list and detail share ETag %s", list)
			}
		})
	})
}

// updated_at has whole seconds only, so it cannot tell apart two changes
// within one second; the ETag must. Pinning updated_at in the future makes
// that case certain: every write below leaves updated_at where it is.
func TestETagChangesWithEveryChangeEvenWithinASecond(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		ts.exec(t, `UPDATE tutorials SET updated_at = '2999-01-01T00:00:00Z'`)
		seen := map[string]string{ts.etag(t, "/api/v1/tutorials/go"): "created"}
		listSeen := map[string]string{ts.etag(t, "/api/v1/tutorials"): "created"}
		for _, body := range []string{`{"content": "a"}`, `{"content": "b"}`, `{"estimated_time": 1}`, `{"title": "Go!"}`} {
			resp := ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, body)
			if got := decodeData[Tutorial](t, resp).UpdatedAt.Year(); got != 2999 {
				t.Fatalf("updated_at moved to %d: the test no longer tests the same second", got)
			}
			etag := ts.etag(t, "/api/v1/tutorials/go")
			if before, ok := seen[etag]; ok {
				t.Errorf("after %s: ETag %s, the same as after %s", body, etag, before)
			}
			seen[etag] = body
			if body != `{"content": "a"}` && body != `{"content": "b"}` { // the list has no content
				list := ts.etag(t, "/api/v1/tutorials")
				if before, ok := listSeen[list]; ok {
					t.Errorf("after %s: list ETag %s, the same as after %s", body, list, before)
				}
				listSeen[list] = body
			}
		}
	})
}

func TestIfNoneMatch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		for _, path := range []string{"/api/v1/tutorials/go", "/api/v1/tutorials?per_page=5"} {
			etag := ts.etag(t, path)
			tests := []struct {
				name   string
				header []string // one entry per header line
				want   int
			}{
				{"the same ETag", []string{etag}, http.StatusNotModified},
				{"the same ETag, weak: If-None-Match compares weakly", []string{"W/" + etag}, http.StatusNotModified},
				{"a list holding it", []string{`"old", W/"older", ` + etag}, http.StatusNotModified},
				{"a list holding it, without spaces", []string{`"old",` + etag + `,"x"`}, http.StatusNotModified},
				{"over several header lines", []string{`"old"`, etag}, http.StatusNotModified},
				{"a star", []string{"*"}, http.StatusNotModified},
				{"another ETag", []string{`"0123"`}, http.StatusOK},
				{"the ETag unquoted", []string{strings.Trim(etag, `"`)}, http.StatusOK},
				{"a quote left open", []string{etag[:len(etag)-1]}, http.StatusOK},
				{"a list of others", []string{`"a", "b,c"`}, http.StatusOK},
				{"garbage before it", []string{`x ` + etag}, http.StatusOK},
			}
			for _, tt := range tests {
				t.Run(path+": "+tt.name, func(t *testing.T) {
					req, err := http.NewRequest("GET", ts.url+path, nil)
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Authorization", "Bearer "+ts.readKey)
					for _, v := range tt.header {
						req.Header.Add("If-None-Match", v)
					}
					resp := ts.send(t, req) // checks that a 304 has no body
					if resp.status != tt.want {
						t.Fatalf("status %d %q, want %d", resp.status, resp.error, tt.want)
					}
					if got := resp.header.Get("ETag"); got != etag {
						t.Errorf("ETag = %q, want %q", got, etag)
					}
					if tt.want == http.StatusNotModified && resp.header.Get("Content-Type") != "" {
						t.Errorf("304 has Content-Type %q", resp.header.Get("Content-Type"))
					}
				})
			}
		}

		t.Run("a stale ETag after PATCH gets the new tutorial", func(t *testing.T) {
			old := ts.etag(t, "/api/v1/tutorials/go")
			ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"title": "Go, again"}`)
			resp := ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "", "If-None-Match", old)
			if got := decodeData[Tutorial](t, resp).Title; got != "Go, again" {
				t.Errorf("title %q, want the new one", got)
			}
			if resp.header.Get("ETag") == old {
				t.Errorf("ETag is still the stale %s", old)
			}
		})
		t.Run("HEAD is answered 304 too", func(t *testing.T) {
			etag := ts.etag(t, "/api/v1/tutorials/go")
			if resp := ts.request(t, "HEAD", "/api/v1/tutorials/go", ts.readKey, "", "If-None-Match", etag); resp.status != http.StatusNotModified {
				t.Errorf("HEAD: %d, want 304", resp.status)
			}
		})
		t.Run("authentication comes first", func(t *testing.T) {
			etag := ts.etag(t, "/api/v1/tutorials/go")
			ts.request(t, "GET", "/api/v1/tutorials/go", "", "", "If-None-Match", etag).
				wantError(t, http.StatusUnauthorized, "Missing Authorization header")
		})
		t.Run("a new tutorial changes the list's ETag", func(t *testing.T) {
			old := ts.etag(t, "/api/v1/tutorials")
			ts.create(t, map[string]any{"title": "Rust", "slug": "rust"})
			resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "", "If-None-Match", old)
			if got := decodeData[tutorialPage](t, resp).Total; got != 2 {
				t.Errorf("total %d, want 2", got)
			}
		})
	})
}

func TestIfMatch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// Each write is tried with an If-Match header; goesAhead says whether it must
		// go ahead. A failed one must be 412 and leave the tutorial as it was.
		writes := []struct {
			method, body string
			status       int
		}{
			{"PATCH", `{"title": "Changed"}`, http.StatusOK},
			{"PUT", `{"title": "Changed", "slug": "go"}`, http.StatusOK},
			{"DELETE", "", http.StatusNoContent},
		}
		cases := []struct {
			name      string
			ifMatch   func(current string) string
			goesAhead bool
		}{
			{"the current ETag", func(c string) string { return c }, true},
			{"a list holding the current ETag", func(c string) string { return `"stale", ` + c }, true},
			{"a star", func(string) string { return "*" }, true},
			{"a stale ETag", func(string) string { return `"0000"` }, false},
			{"the current ETag, weak: If-Match compares strongly", func(c string) string { return "W/" + c }, false},
			{"the current ETag unquoted", func(c string) string { return strings.Trim(c, `"`) }, false},
			{"an empty list", func(string) string { return "," }, false},
		}
		for _, w := range writes {
			for _, c := range cases {
				t.Run(w.method+" with "+c.name, func(t *testing.T) {
					ts := newTestServer(t, e)
					before := ts.create(t, map[string]any{"title": "Go", "slug": "go"})
					current := ts.etag(t, "/api/v1/tutorials/go")
					resp := ts.request(t, w.method, "/api/v1/tutorials/go", ts.writeKey, w.body, "If-Match", c.ifMatch(current))
					if c.goesAhead {
						if resp.status != w.status {
							t.Fatalf("status %d %q, want %d", resp.status, resp.error, w.status)
						}
						after := ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "")
						if w.method == "DELETE" {
							after.wantError(t, http.StatusNotFound, "Tutorial not found")
						} else if got := decodeData[Tutorial](t, after).Title; got != "Changed" {
							t.Errorf("title %q, want the write made", got)
						}
						return
					}
					resp.wantError(t, http.StatusPreconditionFailed, "Precondition failed")
					after := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
					if diff := cmp.Diff(before, after); diff != "" {
						t.Errorf("a failed precondition wrote (-before +after):\n%s", diff)
					}
				})
			}
		}

		t.Run("a stale ETag after PATCH is refused", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			stale := ts.etag(t, "/api/v1/tutorials/go")
			if resp := ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"content": "their work"}`, "If-Match", stale); resp.status != http.StatusOK {
				t.Fatalf("first PATCH: %d %q, want 200", resp.status, resp.error)
			}
			ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"content": "my work"}`, "If-Match", stale).
				wantError(t, http.StatusPreconditionFailed, "Precondition failed")
			if got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "")).Content; got != "their work" {
				t.Errorf("content %q, want their work kept", got)
			}
		})

		// A tutorial that is not there has no current ETag: If-Match, even "*",
		// matches nothing, and RFC 9110 answers that with 412. Without If-Match
		// the same request stays a 404.
		t.Run("on a deleted tutorial", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			etag := ts.etag(t, "/api/v1/tutorials/go")
			if resp := ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, "", "If-Match", etag); resp.status != http.StatusNoContent {
				t.Fatalf("DELETE with the current ETag: %d %q, want 204", resp.status, resp.error)
			}
			for _, w := range writes {
				for _, ifMatch := range []string{etag, "*"} {
					ts.request(t, w.method, "/api/v1/tutorials/go", ts.writeKey, w.body, "If-Match", ifMatch).
						wantError(t, http.StatusPreconditionFailed, "Precondition failed")
				}
				ts.request(t, w.method, "/api/v1/tutorials/go", ts.writeKey, w.body).
					wantError(t, http.StatusNotFound, "Tutorial not found")
				// A slug that could never exist is no different.
				ts.request(t, w.method, "/api/v1/tutorials/Not-A-Slug", ts.writeKey, w.body, "If-Match", "*").
					wantError(t, http.StatusPreconditionFailed, "Precondition failed")
			}
			if n := ts.count(t); n != 0 {
				t.Errorf("%d tutorials, want 0: a write with If-Match created one", n)
			}
		})

		t.Run("the body is checked before the precondition", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"title": 5}`, "If-Match", `"stale"`).
				wantError(t, http.StatusBadRequest, "title must be a string")
		})

		t.Run("a slug taken is still a 409 when the ETag matches", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			ts.create(t, map[string]any{"title": "Rust", "slug": "rust"})
			ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"slug": "rust"}`, "If-Match", ts.etag(t, "/api/v1/tutorials/go")).
				wantError(t, http.StatusConflict, "Slug already exists")
		})
	})
}

// Editors who read the same version and all write with If-Match: the check
// is part of the write (UPDATE ... WHERE version = ?), so exactly one of them
// wins however their requests interleave.
func TestIfMatchLetsOnlyOneOfConcurrentEditorsWin(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		etag := ts.etag(t, "/api/v1/tutorials/go")

		const editors = 8
		statuses := make([]int, editors)
		var wg sync.WaitGroup
		for i := range editors {
			wg.Go(func() {
				body := fmt.Sprintf(`{"title": "Editor %d"}`, i)
				statuses[i] = ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, body, "If-Match", etag).status
			})
		}
		wg.Wait()

		var winners []string
		for i, status := range statuses {
			switch status {
			case http.StatusOK:
				winners = append(winners, fmt.Sprintf("Editor %d", i))
			case http.StatusPreconditionFailed:
			default:
				t.Errorf("editor %d: status %d, want 200 or 412", i, status)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("%d editors won (%v), want exactly 1", len(winners), winners)
		}
		if got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "")).Title; got != winners[0] {
			t.Errorf("title %q, want the winner's %q", got, winners[0])
		}
	})
}

// A person who edits a row with the sqlite3 shell or psql knows nothing of
// versions; a trigger moves the version for them, so the ETag still changes and an
// editor holding the old one is still refused.
func TestETagChangesWhenTheRowIsEditedInTheShell(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		edits := []string{
			`UPDATE tutorials SET title = 'From the shell' WHERE slug = 'go'`,
			`UPDATE tutorials SET estimated_time = 5 WHERE slug = 'go'`,
			`UPDATE tutorials SET content = 'x', updated_at = '2999-01-01T00:00:00Z' WHERE slug = 'go'`,
		}
		for _, edit := range edits {
			t.Run(edit, func(t *testing.T) {
				ts := newTestServer(t, e)
				ts.create(t, map[string]any{"title": "Go", "slug": "go"})
				before := ts.etag(t, "/api/v1/tutorials/go")
				ts.exec(t, edit)
				after := ts.etag(t, "/api/v1/tutorials/go")
				if after == before {
					t.Fatalf("ETag %s before and after the edit", after)
				}
				ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"excerpt": "mine"}`, "If-Match", before).
					wantError(t, http.StatusPreconditionFailed, "Precondition failed")
				if resp := ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"excerpt": "mine"}`, "If-Match", after); resp.status != http.StatusOK {
					t.Errorf("PATCH with the ETag after the edit: %d %q, want 200", resp.status, resp.error)
				}
			})
		}
	})
}

// If-Match may list several tags, in one header line or several: the write
// goes ahead when any of them is the tutorial's current one.
func TestIfMatchWithSeveralTags(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		tests := []struct {
			name      string
			header    func(old, current, other string) []string // one entry per header line
			goesAhead bool
		}{
			{"an old ETag, then the current one", func(o, c, _ string) []string { return []string{o + ", " + c} }, true},
			{"the current ETag, then an old one", func(o, c, _ string) []string { return []string{c + "," + o} }, true},
			{"over two header lines", func(o, c, _ string) []string { return []string{o, c} }, true},
			{"another tutorial's, then the current one", func(_, c, x string) []string { return []string{x + ", " + c} }, true},
			{"only old ones", func(o, _, _ string) []string { return []string{o + `, "1-0"`} }, false},
			{"another tutorial's current ETag", func(_, _, x string) []string { return []string{x} }, false},
			{"the current one after a fault", func(o, c, _ string) []string { return []string{o + ` x ` + c} }, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ts := newTestServer(t, e)
				ts.create(t, map[string]any{"title": "Go", "slug": "go"})
				old := ts.etag(t, "/api/v1/tutorials/go")
				ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{"excerpt": "v2"}`)
				current := ts.etag(t, "/api/v1/tutorials/go")
				ts.create(t, map[string]any{"title": "Rust", "slug": "rust"})
				other := ts.etag(t, "/api/v1/tutorials/rust")

				req, err := http.NewRequest("PATCH", ts.url+"/api/v1/tutorials/go", strings.NewReader(`{"title": "Changed"}`))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+ts.writeKey)
				req.Header.Set("Content-Type", "application/json")
				for _, v := range tt.header(old, current, other) {
					req.Header.Add("If-Match", v)
				}
				resp := ts.send(t, req)
				if !tt.goesAhead {
					resp.wantError(t, http.StatusPreconditionFailed, "Precondition failed")
					return
				}
				if got := decodeData[Tutorial](t, resp).Title; got != "Changed" {
					t.Errorf("title %q, want the write made", got)
				}
			})
		}
	})
}

// A tutorial deleted and made again under the same slug is another
// tutorial: an ETag of the first must not match the second, though both
// are at their first version. Ids are never reused, so their ETags differ.
func TestIfMatchDoesNotMatchASuccessorAtTheSameSlug(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		first := ts.etag(t, "/api/v1/tutorials/go")
		if resp := ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, ""); resp.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %q", resp.status, resp.error)
		}
		ts.create(t, map[string]any{"title": "Go, again", "slug": "go"})
		ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, "", "If-Match", first).
			wantError(t, http.StatusPreconditionFailed, "Precondition failed")
		if n := ts.count(t); n != 1 {
			t.Errorf("%d tutorials, want the second one kept", n)
		}
	})
}

// If-Match compares entity tags as strings: only the exact form a tutorial's
// ETag takes names a revision, never another spelling of the same numbers.
func TestETagRevision(t *testing.T) {
	tests := []struct {
		etag string
		want Revision
		ok   bool
	}{
		{`"7-2"`, Revision{ID: 7, Version: 2}, true},
		{`"123456789-1"`, Revision{ID: 123456789, Version: 1}, true},
		{`"+7-2"`, Revision{}, false},
		{`"07-2"`, Revision{}, false},
		{`"7-02"`, Revision{}, false},
		{`" 7-2"`, Revision{}, false},
		{`"7-2"x`, Revision{}, false},
		{`"7-2`, Revision{}, false},
		{`7-2`, Revision{}, false},
		{`"7"`, Revision{}, false},
		{`"7-"`, Revision{}, false},
		{`"0123"`, Revision{}, false},
		{`"140a27593f78d427f80065aaf175725c"`, Revision{}, false}, // a hash, as ETags were before versions
	}
	type result struct {
		Revision Revision
		OK       bool
	}
	for _, tt := range tests {
		t.Run(tt.etag, func(t *testing.T) {
			rev, ok := etagRevision(tt.etag)
			got := result{OK: ok}
			if ok {
				got.Revision = rev
			}
			if diff := cmp.Diff(result{tt.want, tt.ok}, got); diff != "" {
				t.Errorf("etagRevision(%s) (-want +got):\n%s", tt.etag, diff)
			}
			if back := revisionETag(rev); ok && back != tt.etag {
				t.Errorf("revisionETag(%v) = %s, want %s back", rev, back, tt.etag)
			}
		})
	}
}
