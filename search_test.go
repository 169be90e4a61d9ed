package main

// These tests hold full-text search (q) to the contract, on both engines.

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ---- Full-text search: q ----

// search lists the slugs a query string finds, with the page's numbers.
func (ts *testServer) search(t *testing.T, query string) ([]string, tutorialPage) {
	t.Helper()
	page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials?"+query, ts.readKey, ""))
	found := slugs(page.Tutorials)
	page.Tutorials = nil
	return found, page
}

func TestSearch(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		// Each word of "flask" is placed in one field of one tutorial, so that
		// relevance has a clear answer: title, then excerpt, then content.
		ts.create(t, map[string]any{"title": "Flask Authentication", "slug": "flask-auth",
			"excerpt": "Sessions and login.", "content": "Hashing passwords.", "category": "backend",
			"difficulty": "intermediate", "published_at": "2026-01-01T00:00:00Z"})
		ts.create(t, map[string]any{"title": "Python web apps", "slug": "python-web",
			"excerpt": "Start with Flask.", "content": "Routes and templates.", "category": "backend",
			"published_at": "2026-01-03T00:00:00Z"})
		ts.create(t, map[string]any{"title": "Deploying", "slug": "deploying",
			"excerpt": "Servers.", "content": "Run a flask app with gunicorn. C++ and Go too.", "category": "ops",
			"published_at": "2026-01-02T00:00:00Z"})
		ts.create(t, map[string]any{"title": "Über Go", "slug": "uber-go",
			"excerpt": "Don't panic.", "content": "Goroutines.", "category": "lang", "difficulty": "advanced",
			"published_at": "2026-01-04T00:00:00Z"})

		tests := []struct {
			name  string
			query string
			want  []string
			total int64
		}{
			{"title beats excerpt beats content", "q=flask", []string{"flask-auth", "python-web", "deploying"}, 3},
			{"the last word is a prefix", "q=flas", []string{"flask-auth", "python-web", "deploying"}, 3},
			{"the last word after a whole one", "q=flask+auth", []string{"flask-auth"}, 1},
			{"earlier words are whole", "q=fla+authentication", []string{}, 0},
			{"every word must match", "q=flask+gunicorn", []string{"deploying"}, 1},
			{"case does not matter", "q=FLASK+Sessions", []string{"flask-auth"}, 1},
			{"accents do not matter", "q=uber", []string{"uber-go"}, 1},
			{"the accent may be typed", "q=%C3%BCber", []string{"uber-go"}, 1},
			{"content is searched", "q=goroutines", []string{"uber-go"}, 1},
			{"sort overrides relevance", "q=flask&sort=-published_at", []string{"python-web", "deploying", "flask-auth"}, 3},
			{"sort by title", "q=flask&sort=title", []string{"deploying", "flask-auth", "python-web"}, 3},
			{"with a category filter", "q=flask&category=backend", []string{"flask-auth", "python-web"}, 2},
			{"with a difficulty filter", "q=flask&difficulty=intermediate", []string{"flask-auth"}, 1},
			{"paged, with the total of all matches", "q=flask&per_page=2&page=2", []string{"deploying"}, 3},
			{"a page past the end", "q=flask&per_page=2&page=3", []string{}, 3},
			{"no match", "q=django", []string{}, 0},
			{"an empty q is no search", "q=&per_page=1", []string{"uber-go"}, 4},
			{"a q of spaces is no search", "q=%20%20&per_page=1", []string{"uber-go"}, 4},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, page := ts.search(t, tt.query)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("slugs (-want +got):\n%s", diff)
				}
				if page.Total != tt.total {
					t.Errorf("total = %d, want %d", page.Total, tt.total)
				}
			})
		}
	})
}

// Plain words always work, whatever punctuation they hold: FTS5's own
// syntax in user text is searched for as text, never parsed, and so never
// becomes a 500.
func TestSearchTreatsQuerySyntaxAsText(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Flask and C++", "slug": "flask",
			"excerpt": `Don't say "near" or NOT.`, "content": "a-b (c) 🚀 done"})

		tests := []struct {
			q     string
			found bool
		}{
			{`flask"`, true},
			{`"flask`, true},
			{`"flask"`, true},
			{`fla"sk`, false}, // the quote splits the word: "fla" then "sk"
			{`flask*`, true},
			{`flask *`, true},
			{`-flask`, true},
			{`flask -django`, false}, // "-" is not NOT: django is a word to find
			{`flask AND c`, true},
			{`flask OR django`, false}, // OR is a word like any other
			{`NOT`, true},
			{`near`, true},
			{`NEAR(flask c)`, false}, // the phrase "near flask", then c
			{`NEAR(flask`, false},
			{`near) flask`, true},
			{`(flask)`, true},
			{`title:flask`, false}, // no column filter: the phrase "title flask"
			{`^flask`, true},
			{`flask +`, true},
			{`c++`, true},
			{`don't`, true},
			{`a-b`, true},
			{`{flask}`, true},
			{`flask 🚀`, true},
			{`🚀flask`, true},
			{"flask\x00", true},
			{"fl\x00ask", false},
			{"flask \xff\xfe", true},
			{`'; DROP TABLE tutorials; --`, false},
		}
		for _, tt := range tests {
			t.Run(tt.q, func(t *testing.T) {
				got, page := ts.search(t, "q="+url.QueryEscape(tt.q))
				want := []string{}
				if tt.found {
					want = []string{"flask"}
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("slugs (-want +got):\n%s", diff)
				}
				if page.Total != int64(len(want)) {
					t.Errorf("total = %d, want %d", page.Total, len(want))
				}
			})
		}
	})
}

// A q with text but not one word in it could only ever find nothing: the
// client is told so instead of getting an empty list it would take for
// "nothing matches". A q too long is refused too.
func TestSearchBadQ(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		for _, q := range []string{`*`, `"`, `-`, `""`, `( )`, `🚀`, `- * " ( ) ^ :`, "\x00", "\xff"} {
			t.Run(q, func(t *testing.T) {
				resp := ts.request(t, "GET", "/api/v1/tutorials?q="+url.QueryEscape(q), ts.readKey, "")
				resp.wantError(t, http.StatusBadRequest, "q must contain at least one letter or digit")
			})
		}
		t.Run("longer than a title", func(t *testing.T) {
			long := strings.Repeat("ab ", 66) + "abc" // 201 characters
			resp := ts.request(t, "GET", "/api/v1/tutorials?q="+url.QueryEscape(long), ts.readKey, "")
			resp.wantError(t, http.StatusBadRequest, "q must be at most 200 characters")
			if got, _ := ts.search(t, "q="+url.QueryEscape(long[:200])); len(got) != 0 {
				t.Errorf("200 characters: found %v, want a search that finds nothing", got)
			}
			if got, _ := ts.search(t, "q="+url.QueryEscape(strings.Repeat("é", 200))); len(got) != 0 {
				t.Errorf("200 two-byte characters: found %v, want a search that finds nothing", got)
			}
		})
		t.Run("with other problems, all are named", func(t *testing.T) {
			resp := ts.request(t, "GET", "/api/v1/tutorials?page=0&q=*", ts.readKey, "")
			resp.wantError(t, http.StatusBadRequest,
				"page must be an integer of at least 1; q must contain at least one letter or digit")
		})
	})
}

// The index follows every write: the triggers of migration 2 keep it in
// step with the table in the same transaction.
func TestSearchFollowsWrites(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Flask", "slug": "one", "content": "alpha"})
		ts.create(t, map[string]any{"title": "Other", "slug": "two", "content": "beta"})

		find := func(q string) []string {
			t.Helper()
			got, _ := ts.search(t, "q="+q)
			return got
		}
		steps := []struct {
			name, method, path, body string
			queries                  map[string][]string
		}{
			{"patch moves a word from title to content", "PATCH", "/api/v1/tutorials/one", `{"title": "Django", "content": "flask inside"}`,
				map[string][]string{"django": {"one"}, "alpha": {}, "flask": {"one"}}},
			{"patch of another field keeps the index", "PATCH", "/api/v1/tutorials/one", `{"category": "web", "slug": "uno"}`,
				map[string][]string{"django": {"uno"}, "flask": {"uno"}}},
			{"put replaces the text", "PUT", "/api/v1/tutorials/two", `{"title": "Gamma", "slug": "two"}`,
				map[string][]string{"beta": {}, "other": {}, "gamma": {"two"}}},
			{"delete removes it", "DELETE", "/api/v1/tutorials/uno", "",
				map[string][]string{"django": {}, "flask": {}, "gamma": {"two"}}},
		}
		for _, step := range steps {
			t.Run(step.name, func(t *testing.T) {
				if resp := ts.request(t, step.method, step.path, ts.writeKey, step.body); resp.status >= 300 {
					t.Fatalf("%s %s: %d %q", step.method, step.path, resp.status, resp.error)
				}
				for q, want := range step.queries {
					if diff := cmp.Diff(want, find(q)); diff != "" {
						t.Errorf("q=%s (-want +got):\n%s", q, diff)
					}
				}
			})
		}
		if e == sqliteEngine { // FTS5's own check of its index
			checkSearchIndex(t, ts.db)
		}
	})
}

// checkSearchIndex asks FTS5 whether its index agrees with the tutorials
// table, row for row, and checks that every word of the index is in
// tutorials_terms, where a search looks up the words of a prefix (see
// migration 8), as it must be once the server's writer has folded the
// words of what it wrote. SQLite only: these are FTS5's tables.
func checkSearchIndex(t *testing.T, path string) {
	t.Helper()
	db := openSQL(t, path)
	_, err := db.Exec(`INSERT INTO tutorials_fts (tutorials_fts, rank) VALUES ('integrity-check', 1)`)
	if err != nil {
		t.Errorf("search index out of step with the tutorials: %v", err)
	}
	var missing []string
	rows, err := db.Query(`SELECT term FROM tutorials_fts_terms WHERE term NOT IN (SELECT term FROM tutorials_terms)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var term string
		if err := rows.Scan(&term); err != nil {
			t.Fatal(err)
		}
		missing = append(missing, term)
	}
	if len(missing) > 0 {
		t.Errorf("words of the index missing from tutorials_terms: %q", missing)
	}
}

// A database made by the previous release (migration 1 only, with
// tutorials in it) opens, migrates once, and finds its old rows. SQLite
// only: no release before this one ran on PostgreSQL.
func TestMigrationIndexesTheRowsOfAnOldDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")

	// What the previous release did: migration 1, then its own inserts.
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		sqliteMigration(t, 1),
		`PRAGMA user_version = 1`,
		`INSERT INTO tutorials (title, slug, excerpt, content, published_at, created_at, updated_at) VALUES
			('Flask Basics', 'flask-basics', 'Routes.', 'Templates and forms.', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z'),
			('Go Basics', 'go-basics', 'Types.', 'Flask is Python, not Go.', '2025-01-02T00:00:00Z', '2025-01-02T00:00:00Z', '2025-01-02T00:00:00Z')`,
	} {
		if _, err := old.Exec(stmt); err != nil {
			t.Fatalf("build the old database: %v", err)
		}
	}
	old.Close()

	for run := 1; run <= 2; run++ {
		store, err := OpenStore(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", run, err)
		}
		var version int
		if err := openSQL(t, path).QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if last := strings.Count(sqliteSchema, "\n-- migration "); version != last {
			t.Errorf("open #%d: user_version = %d, want %d", run, version, last)
		}
		page, err := store.ListTutorials(ctx, ListParams{Page: 1, PerPage: 10, Query: "flask"})
		list, total := page.Tutorials, page.Total
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"flask-basics", "go-basics"}, slugs(list)); diff != "" || total != 2 {
			t.Errorf("open #%d: search finds (-want +got):\n%s\ntotal %d, want 2", run, diff, total)
		}
		checkSearchIndex(t, path)
		store.Close()
	}
}
