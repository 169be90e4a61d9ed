package main

// Tests of the SQLite engine's schema: its migrations, and what they must
// keep. What the tables promise a client (ids never reused, totals kept
// exact) is the contract's, tested on both engines in api_test.go and
// list_test.go.

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sqliteMigration returns the text of migration n of schema.sql, for a test
// that builds a database as an older release left it.
func sqliteMigration(t testing.TB, n int) string {
	t.Helper()
	_, rest, ok := strings.Cut(sqliteSchema, "-- migration "+strconv.Itoa(n)+":")
	if !ok {
		t.Fatalf("schema.sql has no migration %d", n)
	}
	text, _, _ := strings.Cut(rest, "\n-- migration "+strconv.Itoa(n+1)+":")
	return text[strings.IndexByte(text, '\n'):]
}

// oldDatabase builds a database file as a release whose schema ended at
// migration last left it, then runs statements on it as that release would
// have, and returns its path.
func oldDatabase(t testing.TB, last int, statements ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var steps []string
	for n := 1; n <= last; n++ {
		steps = append(steps, sqliteMigration(t, n))
	}
	steps = append(steps, "PRAGMA user_version = "+strconv.Itoa(last))
	for _, stmt := range append(steps, statements...) {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("build the old database: %v", err)
		}
	}
	return path
}

// Migration 4 builds the tutorials table again (for AUTOINCREMENT). A
// database of the release before it, with tutorials in it and a gap in its
// ids, must come out with the same ids, a search index that still agrees
// with the table, exact totals, and every index and trigger in place.
func TestMigration4KeepsIDsSearchAndTotals(t *testing.T) {
	ctx := context.Background()
	path := oldDatabase(t, 3,
		`INSERT INTO tutorials (id, title, slug, excerpt, content, category, difficulty, published_at, created_at, updated_at) VALUES
			(1, 'Flask Basics', 'flask-basics', 'Routes.', 'Templates and forms.', 'backend', 'beginner', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z'),
			(2, 'Gone', 'gone', '', 'Flask too.', 'backend', 'beginner', '2025-01-02T00:00:00Z', '2025-01-02T00:00:00Z', '2025-01-02T00:00:00Z'),
			(3, 'CSS Grid', 'css-grid', 'Layout.', 'Rows and columns.', 'frontend', 'intermediate', '2025-01-03T00:00:00Z', '2025-01-03T00:00:00Z', '2025-01-03T00:00:00Z'),
			(7, 'Go Basics', 'go-basics', 'Types.', 'Flask is Python, not Go.', 'backend', 'advanced', '2025-01-04T00:00:00Z', '2025-01-04T00:00:00Z', '2025-01-04T00:00:00Z')`,
		`DELETE FROM tutorials WHERE id = 2`,
	)
	store, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	t.Run("every id is kept", func(t *testing.T) {
		want := map[string]int64{"flask-basics": 1, "css-grid": 3, "go-basics": 7}
		got := map[string]int64{}
		for slug := range want {
			tut, err := store.TutorialBySlug(ctx, slug)
			if err != nil {
				t.Fatalf("%s: %v", slug, err)
			}
			got[slug] = tut.ID
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ids (-want +got):\n%s", diff)
		}
	})

	t.Run("search and totals", func(t *testing.T) {
		tests := []struct {
			name  string
			p     ListParams
			want  []string
			total int64
		}{
			{"all", ListParams{}, []string{"go-basics", "css-grid", "flask-basics"}, 3},
			{"a category", ListParams{Category: "backend"}, []string{"go-basics", "flask-basics"}, 2},
			{"a difficulty", ListParams{Difficulty: "intermediate"}, []string{"css-grid"}, 1},
			{"a search", ListParams{Query: "flask", Sort: "-published_at"}, []string{"go-basics", "flask-basics"}, 2},
			{"a search of the deleted one's words", ListParams{Query: "gone"}, []string{}, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.p.Page, tt.p.PerPage = 1, 10
				page, err := store.ListTutorials(ctx, tt.p)
				list, total := page.Tutorials, page.Total
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, slugs(list)); diff != "" || total != tt.total {
					t.Errorf("slugs (-want +got):\n%s\ntotal %d, want %d", diff, total, tt.total)
				}
			})
		}
		checkSearchIndex(t, path)
	})

	t.Run("every index and trigger is in place", func(t *testing.T) {
		rows, err := openSQL(t, path).Query(`SELECT type, name FROM sqlite_schema
			WHERE tbl_name = 'tutorials' AND type IN ('index', 'trigger') AND name NOT LIKE 'sqlite_%'
			ORDER BY type, name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var typ, name string
			if err := rows.Scan(&typ, &name); err != nil {
				t.Fatal(err)
			}
			got = append(got, typ+" "+name)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"index tutorials_both", "index tutorials_both_desc", // and the indexes of migration 6
			"index tutorials_both_title", "index tutorials_both_title_desc",
			"index tutorials_category", "index tutorials_category_desc",
			"index tutorials_category_title", "index tutorials_category_title_desc",
			"index tutorials_difficulty", "index tutorials_difficulty_desc",
			"index tutorials_difficulty_title", "index tutorials_difficulty_title_desc",
			"index tutorials_published", "index tutorials_published_desc",
			"index tutorials_title", "index tutorials_title_desc",
			"trigger tutorials_count_delete", "trigger tutorials_count_insert", "trigger tutorials_count_update",
			"trigger tutorials_fts_delete", "trigger tutorials_fts_insert", "trigger tutorials_fts_update",
			"trigger tutorials_unfolded_insert", "trigger tutorials_unfolded_update", // migration 8's
			"trigger tutorials_version",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("indexes and triggers on tutorials (-want +got):\n%s", diff)
		}
	})

	t.Run("writes after it keep the index and the totals, and new ids", func(t *testing.T) {
		now := mustTime(t, "2026-01-01T00:00:00Z")
		created, err := store.CreateTutorial(ctx, TutorialInput{Title: "Flask Testing", Slug: "flask-testing",
			Category: "backend", Difficulty: "beginner"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if created.ID <= 7 {
			t.Errorf("new tutorial has id %d, want one above 7, the largest kept", created.ID)
		}
		if _, err := store.PatchTutorial(ctx, "css-grid", TutorialPatch{Title: Some("Flask Grid"), Category: Some("backend")}, now, nil); err != nil {
			t.Fatal(err)
		}
		if err := store.DeleteTutorial(ctx, "go-basics", nil); err != nil {
			t.Fatal(err)
		}
		page, err := store.ListTutorials(ctx, ListParams{Page: 1, PerPage: 10, Query: "flask", Category: "backend", Sort: "title"})
		list, total := page.Tutorials, page.Total
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"flask-basics", "css-grid", "flask-testing"}
		if diff := cmp.Diff(want, slugs(list)); diff != "" || total != 3 {
			t.Errorf("search after writes (-want +got):\n%s\ntotal %d, want 3", diff, total)
		}
		if page, err := store.ListTutorials(ctx, ListParams{Page: 1, PerPage: 1, Category: "frontend"}); err != nil || page.Total != 0 {
			t.Errorf("frontend total %d (%v), want 0", total, err)
		}
		checkSearchIndex(t, path)
	})
}

// ---- The kept counts ----

// A list's total comes from tutorial_counts, which schema.sql's triggers
// keep as tutorials are written, rather than from counting the rows: see
// TestTotalsStayExactThroughEveryWrite (list_test.go), on both engines.

func TestCountsMigrationCountsWhatIsThere(t *testing.T) {
	ctx := context.Background()
	// A database as the release before the counts left it, with rows.
	var rows []string
	for i, c := range []string{"go", "go", "sql"} {
		rows = append(rows, fmt.Sprintf(`INSERT INTO tutorials (title, slug, category, published_at, created_at, updated_at)
			VALUES ('T', 't%d', '%s', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`, i, c))
	}
	path := oldDatabase(t, 1, rows...)

	store, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for category, want := range map[string]int64{"": 3, "go": 2, "sql": 1} {
		page, err := store.ListTutorials(ctx, ListParams{Page: 1, PerPage: 1, Category: category})
		total := page.Total
		if err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Errorf("category %q: total %d, want %d", category, total, want)
		}
	}
}
