package main

// These tests hold the API to the contract, route by route, on both
// engines: create and get, the list, change and delete, and the answers
// every route shares. Each starts a real server on a real database
// (testserver_test.go) and speaks HTTP to it.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ---- Tutorials: create and get ----

func TestCreateTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		t.Run("all fields are stored and returned", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.clock.advance(1500 * time.Millisecond) // between two seconds: the server keeps whole ones
			now := ts.clock.now().Truncate(time.Second)
			resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{
			"title": "  Flask Authentication ",
			"slug": "flask-authentication",
			"excerpt": "Sessions, hashing and login flows.",
			"content": "Long text.",
			"category": " backend ",
			"difficulty": "intermediate",
			"estimated_time": 12,
			"published_at": "2026-11-24T22:17:33.75+01:00"
		}`)
			if resp.status != http.StatusCreated {
				t.Fatalf("status %d %q, want 201", resp.status, resp.error)
			}
			if got, want := resp.header.Get("Location"), "/api/v1/tutorials/flask-authentication"; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			got := decodeData[Tutorial](t, resp)
			checkServerTimes(t, got, now)
			want := Tutorial{
				TutorialSummary: TutorialSummary{
					ID:            got.ID,
					Title:         "Flask Authentication",
					Slug:          "flask-authentication",
					Excerpt:       "Sessions, hashing and login flows.",
					Category:      "backend",
					Difficulty:    "intermediate",
					EstimatedTime: ptr(int64(12)),
					PublishedAt:   mustTime(t, "2026-11-24T21:17:33Z"),
					CreatedAt:     got.CreatedAt,
					UpdatedAt:     got.UpdatedAt,
				},
				Content: "Long text.",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("created (-want +got):\n%s", diff)
			}
			// And the same comes back from the database.
			stored := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/flask-authentication", ts.readKey, ""))
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored (-want +got):\n%s", diff)
			}
		})

		t.Run("defaults fill what is not sent", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.clock.advance(1500 * time.Millisecond) // between two seconds: the server keeps whole ones
			now := ts.clock.now().Truncate(time.Second)
			got := ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			checkServerTimes(t, got, now)
			want := Tutorial{TutorialSummary: TutorialSummary{
				ID: got.ID, Title: "Go", Slug: "go", Excerpt: "", Category: "backend", Difficulty: "beginner",
				EstimatedTime: nil, PublishedAt: got.CreatedAt, CreatedAt: got.CreatedAt, UpdatedAt: got.CreatedAt,
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("the JSON has exactly the fields of the contract", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			var got map[string]any
			json.Unmarshal(ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "").data, &got)
			want := []string{"category", "content", "created_at", "difficulty", "estimated_time", "excerpt",
				"id", "published_at", "slug", "title", "updated_at"}
			if diff := cmp.Diff(want, slices.Sorted(mapKeys(got))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if got["estimated_time"] != nil {
				t.Errorf("estimated_time = %v, want null", got["estimated_time"])
			}
		})

		t.Run("duplicate slug is 409 and writes nothing", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title": "Other", "slug": "go"}`)
			resp.wantError(t, http.StatusConflict, "Slug already exists")
			if n := ts.count(t); n != 1 {
				t.Errorf("%d tutorials, want 1", n)
			}
		})
	})
}

// mapKeys yields the keys of m.
func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestUnicodeRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		text := "Ünïcödé ✓ 日本語 🚀 \"quoted\" <b>&amp;</b> \\ \u2028 tab\tend"
		created := ts.create(t, map[string]any{
			"title": "Grüße, 世界 🌍", "slug": "unicode", "excerpt": text, "content": text + "\n" + text,
			"category": "ρυθμίσεις",
		})
		got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/unicode", ts.readKey, ""))
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("(-created +got):\n%s", diff)
		}
		want := []string{"Grüße, 世界 🌍", text, text + "\n" + text, "ρυθμίσεις"}
		if diff := cmp.Diff(want, []string{got.Title, got.Excerpt, got.Content, got.Category}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestGetTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		created := ts.create(t, map[string]any{"title": "Go", "slug": "go"})

		got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		for _, slug := range []string{"missing", "Not-A-Slug", strings.Repeat("a", 101), "%20"} {
			ts.request(t, "GET", "/api/v1/tutorials/"+slug, ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		}
	})
}

// ---- Tutorials: the list ----

// seed creates n tutorials with slugs t000, t001, ... all published at the
// same second, so that only the tie-breaker orders them.
func (ts *testServer) seed(t *testing.T, n int, fields func(i int) map[string]any) []Tutorial {
	t.Helper()
	var out []Tutorial
	for i := range n {
		f := map[string]any{"title": fmt.Sprintf("Tutorial %03d", i), "slug": fmt.Sprintf("t%03d", i),
			"content": "body", "published_at": "2026-01-01T00:00:00Z"}
		if fields != nil {
			for k, v := range fields(i) {
				f[k] = v
			}
		}
		out = append(out, ts.create(t, f))
	}
	return out
}

// slugs lists the slugs of a page.
func slugs(list []TutorialSummary) []string {
	s := []string{}
	for _, t := range list {
		s = append(s, t.Slug)
	}
	return s
}

func TestListTutorials(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		all := ts.seed(t, 7, func(i int) map[string]any {
			return map[string]any{
				// Two share each published_at, to test the tie-breaker.
				"published_at": fmt.Sprintf("2026-01-0%dT00:00:00Z", 1+i/2),
				"category":     []string{"backend", "frontend"}[i%2],
				"difficulty":   difficulties[i%3],
				"title":        []string{"b", "a", "c", "a", "d", "b", "e"}[i],
			}
		})

		t.Run("items carry every field but content", func(t *testing.T) {
			resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
			var page struct {
				Tutorials []map[string]any `json:"tutorials"`
			}
			json.Unmarshal(resp.data, &page)
			want := []string{"category", "created_at", "difficulty", "estimated_time", "excerpt",
				"id", "published_at", "slug", "title", "updated_at"}
			if diff := cmp.Diff(want, slices.Sorted(mapKeys(page.Tutorials[0]))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})

		t.Run("the first item is whole", func(t *testing.T) {
			page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, ""))
			want := tutorialPage{Tutorials: []TutorialSummary{all[6].TutorialSummary}, Page: 1, PerPage: 1, Total: 7, TotalRelation: "eq", TotalPages: 7}
			if diff := cmp.Diff(want, page); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		tests := []struct {
			query string
			want  tutorialPage
			slugs []string
		}{
			{"", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
			{"?sort=published_at", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t001", "t000", "t003", "t002", "t005", "t004", "t006"}},
			{"?sort=title", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t003", "t001", "t005", "t000", "t002", "t004", "t006"}},
			{"?sort=-title", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t004", "t002", "t005", "t000", "t003", "t001"}},
			{"?per_page=3", tutorialPage{Page: 1, PerPage: 3, Total: 7, TotalRelation: "eq", TotalPages: 3},
				[]string{"t006", "t005", "t004"}},
			{"?per_page=3&page=3", tutorialPage{Page: 3, PerPage: 3, Total: 7, TotalRelation: "eq", TotalPages: 3},
				[]string{"t000"}},
			{"?per_page=3&page=4", tutorialPage{Page: 4, PerPage: 3, Total: 7, TotalRelation: "eq", TotalPages: 3},
				[]string{}},
			{"?page=99999999999999999999", tutorialPage{Page: 1<<63 - 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{}},
			{"?per_page=101", tutorialPage{Page: 1, PerPage: 100, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
			{"?per_page=99999999999999999999", tutorialPage{Page: 1, PerPage: 100, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
			{"?category=frontend", tutorialPage{Page: 1, PerPage: 20, Total: 3, TotalRelation: "eq", TotalPages: 1},
				[]string{"t005", "t003", "t001"}},
			{"?category=front", tutorialPage{Page: 1, PerPage: 20, Total: 0, TotalRelation: "eq", TotalPages: 0},
				[]string{}},
			{"?difficulty=advanced", tutorialPage{Page: 1, PerPage: 20, Total: 2, TotalRelation: "eq", TotalPages: 1},
				[]string{"t005", "t002"}},
			{"?difficulty=beginner&category=backend&sort=title", tutorialPage{Page: 1, PerPage: 20, Total: 2, TotalRelation: "eq", TotalPages: 1},
				[]string{"t000", "t006"}},
			{"?unknown=1&q2=x", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				got := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials"+tt.query, ts.readKey, ""))
				gotSlugs := slugs(got.Tutorials)
				got.Tutorials = nil
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("page (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.slugs, gotSlugs); diff != "" {
					t.Errorf("slugs (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestListEmptyIsAnEmptyArray(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
		if want := `{"tutorials":[],"page":1,"per_page":20,"total":0,"total_relation":"eq","total_pages":0}`; string(resp.data) != want {
			t.Errorf("data = %s, want %s", resp.data, want)
		}
	})
}

func TestListBadQuery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		tests := []struct {
			query string
			msg   string
		}{
			{"page=0", "page must be an integer of at least 1"},
			{"page=-1", "page must be an integer of at least 1"},
			{"page=-99999999999999999999", "page must be an integer of at least 1"},
			{"page=two", "page must be an integer of at least 1"},
			{"page=99999999999999999999x", "page must be an integer of at least 1"},
			{"per_page=+99999999999999999999-", "per_page must be an integer of at least 1"},
			{"page=1.5", "page must be an integer of at least 1"},
			{"per_page=0", "per_page must be an integer of at least 1"},
			{"per_page=x", "per_page must be an integer of at least 1"},
			{"difficulty=expert", "difficulty must be one of beginner, intermediate, advanced"},
			{"sort=id", "sort must be one of -published_at, published_at, title, -title"},
			{"sort=title%3BDROP%20TABLE%20tutorials", "sort must be one of -published_at, published_at, title, -title"},
			{"sort=-published_at;DROP", `query parameter "sort" cannot be read: a ";" or a bad "%" escape`},
			{"page=2&sort=title;", `query parameter "sort" cannot be read: a ";" or a bad "%" escape`},
			{"q=%zz", `query parameter "q" cannot be read: a ";" or a bad "%" escape`},
			{"x=%zz&page=2", `query parameter "x" cannot be read: a ";" or a bad "%" escape`},
			{"%zz=1", `the query string cannot be read: a ";" or a bad "%" escape`},
			{"a;b=1", `the query string cannot be read: a ";" or a bad "%" escape`},
			{"page=0&per_page=0&sort=x", "page must be an integer of at least 1; per_page must be an integer of at least 1; sort must be one of -published_at, published_at, title, -title"},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				ts.request(t, "GET", "/api/v1/tutorials?"+tt.query, ts.readKey, "").wantError(t, http.StatusBadRequest, tt.msg)
			})
		}
	})
}

func TestPagingThroughTiesNeverRepeatsOrSkips(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		// 25 tutorials with the same published_at and the same title: every sort
		// key ties, so the order rests on id alone.
		created := ts.seed(t, 25, func(int) map[string]any { return map[string]any{"title": "Same"} })
		var want []string
		for i := len(created) - 1; i >= 0; i-- {
			want = append(want, created[i].Slug) // id descending
		}
		for _, sort := range sortNames {
			var got []string
			for page := 1; page <= 9; page++ {
				p := decodeData[tutorialPage](t, ts.request(t, "GET", fmt.Sprintf("/api/v1/tutorials?sort=%s&per_page=3&page=%d", sort, page), ts.readKey, ""))
				got = append(got, slugs(p.Tutorials)...)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sort=%s: pages (-want +got):\n%s", sort, diff)
			}
		}
	})
}

// ---- Tutorials: change and delete ----

func TestPatchTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		base := map[string]any{"title": "Go", "slug": "go", "excerpt": "e", "content": "c", "category": "lang",
			"difficulty": "advanced", "estimated_time": 5, "published_at": "2026-01-01T00:00:00Z"}

		t.Run("changes only the fields sent", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, base)
			ts.clock.advance(time.Minute)
			got := decodeData[Tutorial](t, ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey,
				`{"excerpt": "new excerpt", "estimated_time": null}`))
			want := created
			want.Excerpt = "new excerpt"
			want.EstimatedTime = nil
			want.UpdatedAt = created.UpdatedAt.Add(time.Minute) // moved forward with the clock
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("every field can change, the slug too", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, base)
			got := decodeData[Tutorial](t, ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{
			"title": " Rust ", "slug": "rust", "excerpt": "", "content": "new", "category": "systems",
			"difficulty": "beginner", "estimated_time": 0, "published_at": "2025-06-01T12:00:00Z"}`))
			want := Tutorial{TutorialSummary: TutorialSummary{ID: created.ID, Title: "Rust", Slug: "rust", Excerpt: "",
				Category: "systems", Difficulty: "beginner", EstimatedTime: ptr(int64(0)),
				PublishedAt: mustTime(t, "2025-06-01T12:00:00Z"), CreatedAt: created.CreatedAt, UpdatedAt: got.UpdatedAt},
				Content: "new"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
			if got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/rust", ts.readKey, "")); got.ID != created.ID {
				t.Errorf("id %d at the new slug, want %d", got.ID, created.ID)
			}
		})

		t.Run("bad input", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, base)
			ts.create(t, map[string]any{"title": "Other", "slug": "other"})
			tests := []struct {
				name, body string
				status     int
				msg        string
			}{
				{"slug taken", `{"slug": "other"}`, 409, "Slug already exists"},
				{"blank title", `{"title": " "}`, 400, "title is required"},
				{"blank slug", `{"slug": ""}`, 400, "slug is required"},
				{"null title", `{"title": null}`, 400, "title must be a string"},
				{"read-only field", `{"id": 9}`, 400, "id is read-only"},
				{"unknown field", `{"tags": []}`, 400, `unknown field "tags"`},
				{"several", `{"difficulty": "x", "category": ""}`, 400, "category must be 1 to 50 characters; difficulty must be one of beginner, intermediate, advanced"},
				{"not an object", `[]`, 400, "Request body must be a JSON object, not an array"},
				{"empty body", ``, 400, "Request body must be JSON"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, tt.body).wantError(t, tt.status, tt.msg)
				})
			}
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("failed patches changed the tutorial (-want +got):\n%s", diff)
			}
		})

		t.Run("missing tutorial is 404", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.request(t, "PATCH", "/api/v1/tutorials/nope", ts.writeKey, `{"title": "x"}`).wantError(t, http.StatusNotFound, "Tutorial not found")
		})
	})
}

func TestReplaceTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		full := map[string]any{"title": "Go", "slug": "go", "excerpt": "e", "content": "c", "category": "lang",
			"difficulty": "advanced", "estimated_time": 5, "published_at": "2026-01-01T00:00:00Z"}

		t.Run("fields not sent go back to their defaults", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, full)
			got := decodeData[Tutorial](t, ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "Go 2", "slug": "go-2"}`))
			want := Tutorial{TutorialSummary: TutorialSummary{ID: created.ID, Title: "Go 2", Slug: "go-2", Excerpt: "",
				Category: "backend", Difficulty: "beginner", EstimatedTime: nil,
				PublishedAt: created.CreatedAt, CreatedAt: created.CreatedAt, UpdatedAt: got.UpdatedAt}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("every field is written", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			body := maps(full, map[string]any{"title": "Again", "published_at": "2024-02-29T23:59:59Z"})
			got := decodeData[Tutorial](t, ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, mustJSON(t, body)))
			want := Tutorial{TutorialSummary: TutorialSummary{ID: created.ID, Title: "Again", Slug: "go", Excerpt: "e",
				Category: "lang", Difficulty: "advanced", EstimatedTime: ptr(int64(5)),
				PublishedAt: mustTime(t, "2024-02-29T23:59:59Z"), CreatedAt: created.CreatedAt, UpdatedAt: got.UpdatedAt},
				Content: "c"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("bad input and conflicts", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, full)
			ts.create(t, map[string]any{"title": "Other", "slug": "other"})
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "x"}`).wantError(t, http.StatusBadRequest, "slug is required")
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"slug": "go"}`).wantError(t, http.StatusBadRequest, "title is required")
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "x", "slug": "other"}`).wantError(t, http.StatusConflict, "Slug already exists")
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "x", "slug": "go"}`, "Content-Type", "text/plain").
				wantError(t, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("failed PUTs changed the tutorial (-want +got):\n%s", diff)
			}
		})

		t.Run("PUT does not create", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.request(t, "PUT", "/api/v1/tutorials/new", ts.writeKey, `{"title": "x", "slug": "new"}`).wantError(t, http.StatusNotFound, "Tutorial not found")
			if n := ts.count(t); n != 0 {
				t.Errorf("%d tutorials, want 0", n)
			}
		})
	})
}

// maps returns a copy of a with b's entries over it.
func maps(a, b map[string]any) map[string]any {
	m := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func TestDeleteTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		ts.create(t, map[string]any{"title": "Keep", "slug": "keep"})

		resp := ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, "")
		if resp.status != http.StatusNoContent {
			t.Fatalf("status %d %q, want 204", resp.status, resp.error)
		}
		ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, ""))
		if diff := cmp.Diff([]string{"keep"}, slugs(page.Tutorials)); diff != "" {
			t.Errorf("left (-want +got):\n%s", diff)
		}
	})
}

// Deleting the newest tutorial and creating another used to give the new
// one the deleted one's id: SQLite's default is the largest id left plus
// one. A client that kept the old id would then find the wrong tutorial.
func TestIDsAreNeverReused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "First", "slug": "first"})
		newest := ts.create(t, map[string]any{"title": "Newest", "slug": "newest"})
		if resp := ts.request(t, "DELETE", "/api/v1/tutorials/newest", ts.writeKey, ""); resp.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %q", resp.status, resp.error)
		}
		if next := ts.create(t, map[string]any{"title": "Next", "slug": "next"}); next.ID <= newest.ID {
			t.Errorf("a tutorial created after deleting id %d has id %d: ids must never be reused", newest.ID, next.ID)
		}
	})
}

// ---- Everything else the server answers ----

func TestHeadHasNoBody(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		for _, path := range []string{"/api/v1/tutorials", "/api/v1/tutorials/go", "/healthz"} {
			// request checks that HEAD has no body.
			if resp := ts.request(t, "HEAD", path, ts.readKey, ""); resp.status != http.StatusOK {
				t.Errorf("HEAD %s: %d, want 200", path, resp.status)
			}
		}
	})
}

func TestDatabaseFailureIs500NotConflict(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		// From now on every insert fails with a constraint error that is not the
		// unique slug's: only the engine's own code for that may become a 409.
		ts.exec(t, refuseInserts(e))
		resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title": "Go", "slug": "go"}`)
		resp.wantError(t, http.StatusInternalServerError, "Internal server error")
		if strings.Contains(string(resp.body), "sql") {
			t.Errorf("the response leaks the driver error: %s", resp.body)
		}
		if logs := ts.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "refused by a trigger") {
			t.Errorf("the log does not name the cause:\n%s", logs)
		}
	})
}

func TestHealthz(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		resp := ts.request(t, "GET", "/healthz", "", "")
		if got := decodeData[map[string]string](t, resp); !cmp.Equal(got, map[string]string{"status": "ok"}) {
			t.Errorf("data = %v", got)
		}
		ts.store.Close()
		ts.request(t, "GET", "/healthz", "", "").wantError(t, http.StatusServiceUnavailable, "Database unavailable")
	})
}

func TestReadOnlyFieldsAreReportedInOneOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		body := `{"updated_at":"x","created_at":"y","id":1,"title":"a","slug":"a"}`
		for range 10 { // map order changes from run to run; the message must not
			ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body).
				wantError(t, http.StatusBadRequest, "id is read-only; created_at is read-only; updated_at is read-only")
		}
	})
}
