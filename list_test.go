package main

// Tests of what keeps every list and search request's cost the same
// however large the library grows (issue 16). The bounds are lowered so
// that a few tutorials reach them.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newTestServerWithBounds starts the API on a fresh database of engine e
// whose store keeps to bounds instead of the program's.
func newTestServerWithBounds(t *testing.T, e engine, change func(*listBounds)) *testServer {
	t.Helper()
	ts := newTestDatabase(t, e)
	switch s := ts.store.(type) {
	case *sqliteStore:
		change(&s.bounds)
	case *postgresStore:
		change(&s.bounds)
	default:
		t.Fatalf("a %T has no list bounds for a test to lower", ts.store)
	}
	return serveTestDatabase(t, ts, testConfig(t))
}

// ---- The words of a prefix ----

// The last word of a search is looked up in tutorials_terms, the words of
// the index (migration 8). A tutorial written with plain SQL, behind the
// server's back, must be found by the prefix of its words all the same:
// before the server's next write folds them in, by FTS5's own prefix
// query, and after it, by the words looked up.
func TestSearchFindsThePrefixOfWordsWrittenBehindTheServersBack(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
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
		if e == sqliteEngine { // FTS5's own check of its index
			checkSearchIndex(t, ts.db)
		}
	})
}

// A prefix that starts more words than the store looks up by name is
// answered by FTS5's own prefix query: every match, never the first few
// words' only.
func TestSearchPrefixOfMoreWordsThanLookedUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWithBounds(t, e, func(b *listBounds) { b.expansions = 2 })
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
			{"brewing brewer", []string{}},                     // a word, then two words looked up
			{"brewer brewer", []string{"brewer"}},
		}
		for _, tt := range tests {
			found, _ := ts.search(t, "q="+url.QueryEscape(tt.q))
			if diff := cmp.Diff(tt.want, found); diff != "" {
				t.Errorf("q=%s (-want +got):\n%s", tt.q, diff)
			}
		}
	})
}

// ---- Paging by cursor ----

// follow pages through the list from path by the Link header's next link,
// as a client would, calling between with the items given so far after
// each page, and returns every item it was given.
func (ts *testServer) follow(t *testing.T, path string, between func(given []TutorialSummary)) []TutorialSummary {
	t.Helper()
	var items []TutorialSummary
	for page := 1; path != ""; page++ {
		if page > 100 {
			t.Fatal("next never ends")
		}
		resp := ts.request(t, "GET", path, ts.readKey, "")
		items = append(items, decodeData[tutorialPage](t, resp).Tutorials...)
		next := links(t, resp.header.Get("Link"))["next"]
		if next != "" && !strings.Contains(next, "cursor=") && !strings.Contains(next, "q=") {
			t.Fatalf("page %d: next %q has no cursor", page, next)
		}
		path = strings.TrimPrefix(next, ts.url)
		if between != nil {
			between(items)
		}
	}
	return items
}

// listOrder reports whether a comes before b in the list's order for sort:
// the sort key, then id descending.
func listOrder(sort string, a, b TutorialSummary) bool {
	byKey := map[string]int{
		"-published_at": -a.PublishedAt.Compare(b.PublishedAt),
		"published_at":  a.PublishedAt.Compare(b.PublishedAt),
		"title":         strings.Compare(a.Title, b.Title),
		"-title":        -strings.Compare(a.Title, b.Title),
	}[sort]
	return byKey < 0 || byKey == 0 && a.ID > b.ID
}

// sortedSlugs is the slugs of items in the order of sort.
func sortedSlugs(sort string, items []TutorialSummary) []string {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b TutorialSummary) int {
		if listOrder(sort, a, b) {
			return -1
		}
		return 1
	})
	return slugs(items)
}

// pagingLibrary creates 23 tutorials whose sort keys tie in groups: three
// published_at, four titles, two categories and difficulties, and the word
// "shared" in all, "odd" in every other.
func pagingLibrary(t *testing.T, ts *testServer) []TutorialSummary {
	t.Helper()
	var all []TutorialSummary
	for i := range 23 {
		words := "shared"
		if i%2 == 1 {
			words += " odd"
		}
		all = append(all, ts.create(t, map[string]any{
			"title": []string{"Beta", "alpha", "Gamma", "Beta"}[i%4], "slug": fmt.Sprintf("t%02d", i),
			"content": words, "category": []string{"web", "ops"}[i%2], "difficulty": difficulties[i%3],
			"published_at": fmt.Sprintf("2026-01-0%dT00:00:00Z", 1+i%3),
		}).TutorialSummary)
	}
	return all
}

// Following next visits every item once, in order, for every sort, filter
// and search in a sort: the cursor holds the sort key and the id, and the
// order is total.
func TestFollowingNextVisitsEveryItemOnceInOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		all := pagingLibrary(t, ts)
		filters := []struct {
			query string
			keep  func(TutorialSummary) bool
		}{
			{"", func(TutorialSummary) bool { return true }},
			{"&category=web", func(it TutorialSummary) bool { return it.Category == "web" }},
			{"&difficulty=advanced", func(it TutorialSummary) bool { return it.Difficulty == "advanced" }},
			{"&category=ops&difficulty=beginner", func(it TutorialSummary) bool { return it.Category == "ops" && it.Difficulty == "beginner" }},
			{"&q=shared", func(TutorialSummary) bool { return true }},
			{"&q=odd&category=ops", func(it TutorialSummary) bool { return it.Category == "ops" }},
		}
		for _, sort := range sortNames {
			for _, f := range filters {
				for _, perPage := range []int{1, 4} {
					query := fmt.Sprintf("?sort=%s&per_page=%d%s", sort, perPage, f.query)
					t.Run(query, func(t *testing.T) {
						var want []TutorialSummary
						for _, it := range all {
							if f.keep(it) {
								want = append(want, it)
							}
						}
						got := slugs(ts.follow(t, "/api/v1/tutorials"+query, nil))
						if diff := cmp.Diff(sortedSlugs(sort, want), got); diff != "" {
							t.Errorf("(-want +got):\n%s", diff)
						}
					})
				}
			}
		}
		t.Run("the default order, without sort", func(t *testing.T) {
			got := slugs(ts.follow(t, "/api/v1/tutorials?per_page=5", nil))
			if diff := cmp.Diff(sortedSlugs("-published_at", all), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
}

// While others create and delete tutorials between a client's pages, the
// client following next still sees every tutorial that was there all along
// exactly once, in order, and never one twice: where page numbers would
// shift every item by those that came or went before it, a cursor is a
// place in the order that stays where it is.
func TestFollowingNextWhileOthersWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// The title and published_at of a tutorial that sorts first, then of
		// one that sorts last. (In text order, upper case comes first.)
		edges := map[string][2][2]string{
			"-published_at": {{"x", "2030-01-01T00:00:00Z"}, {"x", "2020-01-01T00:00:00Z"}},
			"published_at":  {{"x", "2020-01-01T00:00:00Z"}, {"x", "2030-01-01T00:00:00Z"}},
			"title":         {{"Aaa", "2026-01-01T00:00:00Z"}, {"zzz", "2026-01-01T00:00:00Z"}},
			"-title":        {{"zzz", "2026-01-01T00:00:00Z"}, {"Aaa", "2026-01-01T00:00:00Z"}},
		}
		for _, sort := range sortNames {
			t.Run(sort, func(t *testing.T) {
				ts := newTestServer(t, e)
				all := pagingLibrary(t, ts)
				order := sortedSlugs(sort, all) // of those not deleted yet
				deleted := map[string]bool{}
				unseenWhenDeleted := map[string]bool{}
				added := 0
				got := ts.follow(t, "/api/v1/tutorials?per_page=2&sort="+sort, func(given []TutorialSummary) {
					// After each page: delete the first two items of the list,
					// seen already, and its last, not seen yet; create one
					// that sorts first and one that sorts last. Page numbers
					// would now be one item off.
					if len(order) < 3 {
						return
					}
					for _, slug := range []string{order[0], order[1], order[len(order)-1]} {
						if resp := ts.request(t, "DELETE", "/api/v1/tutorials/"+slug, ts.writeKey, ""); resp.status != http.StatusNoContent {
							t.Fatalf("DELETE %s: %d %q", slug, resp.status, resp.error)
						}
						deleted[slug] = true
						unseenWhenDeleted[slug] = !slices.Contains(slugs(given), slug)
					}
					order = slices.DeleteFunc(order, func(s string) bool { return deleted[s] })
					for _, where := range edges[sort] {
						added++
						ts.create(t, map[string]any{"title": where[0], "published_at": where[1], "slug": fmt.Sprintf("new-%d", added)})
					}
				})
				seen := map[string]bool{}
				for i, it := range got {
					if seen[it.Slug] {
						t.Errorf("%s given twice", it.Slug)
					}
					seen[it.Slug] = true
					if i > 0 && !listOrder(sort, got[i-1], it) {
						t.Errorf("%s after %s: out of order", it.Slug, got[i-1].Slug)
					}
				}
				for _, it := range all {
					switch {
					case !deleted[it.Slug] && !seen[it.Slug]:
						t.Errorf("%s, there all along, never given", it.Slug)
					case unseenWhenDeleted[it.Slug] && seen[it.Slug]:
						t.Errorf("%s given after it was deleted", it.Slug)
					}
				}
				if added < 6 {
					t.Errorf("only %d tutorials created during the walk: too few pages to test it", added)
				}
			})
		}
	})
}

func TestListBadCursor(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		tests := []struct {
			name, query, msg string
		}{
			{"not base64url", "cursor=%21%21", "cursor is not valid"},
			{"base64 with padding", "sort=title&cursor=" + url.QueryEscape(base64.URLEncoding.EncodeToString([]byte(`["title","ab",1]`))), "cursor is not valid"},
			{"not JSON", "cursor=" + b64(`title,a,1`), "cursor is not valid"},
			{"not an array", "cursor=" + b64(`{"sort":"title"}`), "cursor is not valid"},
			{"two fields", "cursor=" + b64(`["title","a"]`), "cursor is not valid"},
			{"four fields", "cursor=" + b64(`["title","a",1,2]`), "cursor is not valid"},
			{"an id of 0", "cursor=" + b64(`["title","a",0]`), "cursor is not valid"},
			{"an id that is not an integer", "cursor=" + b64(`["title","a",1.5]`), "cursor is not valid"},
			{"a key that is not text", "cursor=" + b64(`["title",7,1]`), "cursor is not valid"},
			{"a time that is not one", "cursor=" + b64(`["-published_at","yesterday",1]`), "cursor is not valid"},
			{"a sort that is not one", "cursor=" + b64(`["id","7",1]`), "cursor is not valid"},
			{"not UTF-8", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("[\"title\",\"\xff\",1]")), "cursor is not valid"},
			{"a title with NUL, which no title has", "sort=title&cursor=" + b64(`["title","a\u0000",1]`), "cursor is not valid"},
			{"too long", "cursor=" + strings.Repeat("A", 4000), "cursor is not valid"},
			{"of another sort", "sort=title&cursor=" + makeCursor("-published_at", "2026-01-01T00:00:00Z", 1), "cursor belongs to another sort"},
			{"of a sort, without one", "cursor=" + makeCursor("title", "a", 1), "cursor belongs to another sort"},
			{"in relevance order, which has none", "q=go&cursor=" + makeCursor("-published_at", "2026-01-01T00:00:00Z", 1), "cursor belongs to another sort"},
			{"with other problems", "page=0&cursor=x", "page must be an integer of at least 1; cursor is not valid"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ts.request(t, "GET", "/api/v1/tutorials?"+tt.query, ts.readKey, "").wantError(t, http.StatusBadRequest, tt.msg)
			})
		}
	})
}

// A category that no tutorial could have (text that is not UTF-8, or that
// holds NUL) is a filter like any other: nothing matches it. PostgreSQL
// would refuse to compare it; the store must not pass that on as a 500.
func TestListFilterThatNoTutorialCouldHave(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		for _, category := range []string{"a%00b", "%FF", "%C3"} {
			page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials?category="+category, ts.readKey, ""))
			if page.Total != 0 || len(page.Tutorials) != 0 {
				t.Errorf("category=%s: %d tutorials, total %d, want none", category, len(page.Tutorials), page.Total)
			}
		}
	})
}

// ---- The window of a search ----

// A search lists, counts and ranks its newest matches, at most a window of
// them: past it, the total is a lower bound, marked as such, and the pages
// end with the window. Within it, the answer is what it would be without
// the bound.
func TestSearchWindow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWithBounds(t, e, func(b *listBounds) { b.window, b.scan = 4, 8 })
		// flask in every tutorial, in the title of t1 and t4 (the best
		// matches), rare in t0 only; ops is the category of every third.
		for i := range 7 {
			title := "Notes"
			if i == 1 || i == 4 {
				title = "Flask"
			}
			content := "flask"
			if i == 0 {
				content = "flask rare"
			}
			ts.create(t, map[string]any{"title": title, "slug": fmt.Sprintf("t%d", i), "content": content,
				"category": []string{"ops", "web", "web"}[i%3], "published_at": fmt.Sprintf("2026-01-0%dT00:00:00Z", 7-i)})
		}
		tests := []struct {
			query    string
			want     []string
			total    int64
			relation string
		}{
			{"q=rare", []string{"t0"}, 1, "eq"},
			{"q=flask", []string{"t4", "t6", "t5", "t3"}, 4, "gte"},                   // relevance among t6..t3, the newest four
			{"q=flask&per_page=3&page=2", []string{"t3"}, 4, "gte"},                   // the window's last page
			{"q=flask&per_page=3&page=3", []string{}, 4, "gte"},                       // past it
			{"q=flask&sort=published_at", []string{"t6", "t5", "t4", "t3"}, 4, "gte"}, // sorted within it
			{"q=flask&category=ops", []string{"t6", "t3", "t0"}, 3, "eq"},             // all seven looked at, for three
			{"q=flask&category=web", []string{"t4", "t1", "t5", "t2"}, 4, "eq"},       // all seven looked at, for four
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				found, page := ts.search(t, tt.query)
				if diff := cmp.Diff(tt.want, found); diff != "" {
					t.Errorf("slugs (-want +got):\n%s", diff)
				}
				if page.Total != tt.total || page.TotalRelation != tt.relation {
					t.Errorf("total %d %q, want %d %q", page.Total, page.TotalRelation, tt.total, tt.relation)
				}
			})
		}
	})
}

// A search with a filter looks at a bounded number of matches of its
// words: when those run out before the window fills, what passed the
// filter is a lower bound.
func TestSearchWithAFilterLooksAtABoundedNumberOfMatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWithBounds(t, e, func(b *listBounds) { b.window, b.scan = 10, 3 })
		for i := range 6 {
			ts.create(t, map[string]any{"title": "Flask", "slug": fmt.Sprintf("t%d", i),
				"category": []string{"ops", "web"}[i%2], "published_at": "2026-01-01T00:00:00Z"})
		}
		found, page := ts.search(t, "q=flask&category=ops&sort=-published_at")
		if diff := cmp.Diff([]string{"t4"}, found); diff != "" { // of t5, t4, t3, the newest three
			t.Errorf("slugs (-want +got):\n%s", diff)
		}
		if page.Total != 1 || page.TotalRelation != "gte" {
			t.Errorf("total %d %q, want 1 gte", page.Total, page.TotalRelation)
		}
	})
}

// Relevance counts the words found in few tutorials only: a word in more
// than the bound must match but does not order; a search of such words
// alone lists its matches newest first.
func TestSearchRelevanceLeavesCommonWordsOut(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWithBounds(t, e, func(b *listBounds) { b.common = 2 })
		// "common" is in all four, in the title of t0 only; "rare" in two, in
		// the title of t2.
		for i, f := range []struct{ title, content string }{
			{"Common", "text"}, {"Notes", "common rare"}, {"Rare", "common"}, {"Notes", "common"},
		} {
			ts.create(t, map[string]any{"title": f.title, "slug": fmt.Sprintf("t%d", i), "content": f.content,
				"published_at": fmt.Sprintf("2026-01-0%dT00:00:00Z", 1+i)})
		}
		tests := []struct {
			q    string
			want []string
		}{
			{"common", []string{"t3", "t2", "t1", "t0"}}, // newest first, not t0 (its title) first
			{"common rare", []string{"t2", "t1"}},        // by rare alone: t2 has it in its title
			{"rare", []string{"t2", "t1"}},
		}
		for _, tt := range tests {
			found, page := ts.search(t, "q="+url.QueryEscape(tt.q))
			if diff := cmp.Diff(tt.want, found); diff != "" {
				t.Errorf("q=%s (-want +got):\n%s", tt.q, diff)
			}
			if page.TotalRelation != "eq" {
				t.Errorf("q=%s: total_relation %q, want eq", tt.q, page.TotalRelation)
			}
		}
	})
}

// ---- The deadline ----

// A list or a search that runs past its deadline is stopped, and answered
// with a 503 that says so, never left to run.
func TestListPastItsDeadlineIs503(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServerWithBounds(t, e, func(b *listBounds) { b.timeout = time.Nanosecond })
		ts.create(t, map[string]any{"title": "Flask", "slug": "flask"})
		for _, query := range []string{"", "?q=flask", "?page=1000"} {
			ts.request(t, "GET", "/api/v1/tutorials"+query, ts.readKey, "").wantError(t, http.StatusServiceUnavailable, "Query took too long")
		}
		// A lookup has no such deadline to meet.
		if resp := ts.request(t, "GET", "/api/v1/tutorials/flask", ts.readKey, ""); resp.status != http.StatusOK {
			t.Errorf("GET one tutorial: %d %q", resp.status, resp.error)
		}
	})
}

// A list's total is kept as tutorials are written rather than counted
// (SQLite: tutorial_counts): every kind of write, failed ones too, must leave
// it exact.
func TestTotalsStayExactThroughEveryWrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.seed(t, 9, func(i int) map[string]any {
			return map[string]any{"category": []string{"go", "sql", "web"}[i%3],
				"difficulty": difficulties[i/3%3]}
		})
		// Each kind of write, including those that fail.
		ts.request(t, "PATCH", "/api/v1/tutorials/t000", ts.writeKey, `{"category": "sql"}`)
		ts.request(t, "PATCH", "/api/v1/tutorials/t001", ts.writeKey, `{"difficulty": "advanced", "title": "New"}`)
		ts.request(t, "PATCH", "/api/v1/tutorials/t002", ts.writeKey, `{"slug": "t003"}`) // 409
		ts.request(t, "PUT", "/api/v1/tutorials/t004", ts.writeKey, `{"title": "Back to defaults", "slug": "t004"}`)
		ts.request(t, "DELETE", "/api/v1/tutorials/t005", ts.writeKey, "")
		ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title": "Dup", "slug": "t006"}`) // 409

		all := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials?per_page=100", ts.readKey, ""))
		for _, filter := range []string{"", "category=go", "category=sql", "category=web", "category=backend",
			"category=none", "difficulty=beginner", "difficulty=advanced", "category=sql&difficulty=advanced"} {
			want := int64(0)
			for _, tut := range all.Tutorials {
				if strings.Contains(filter, "category=") && !strings.Contains(filter+"&", "category="+tut.Category+"&") ||
					strings.Contains(filter, "difficulty=") && !strings.Contains(filter+"&", "difficulty="+tut.Difficulty+"&") {
					continue
				}
				want++
			}
			page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials?"+filter, ts.readKey, ""))
			if page.Total != want {
				t.Errorf("%q: total %d, want %d", filter, page.Total, want)
			}
		}
		if all.Total != 8 {
			t.Errorf("total %d, want 8", all.Total)
		}
	})
}
