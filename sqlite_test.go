package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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

// ---- The kept counts ----

// A list's total comes from tutorial_counts, which schema.sql's triggers
// keep as tutorials are written, rather than from counting the rows.

func TestTotalsStayExactThroughEveryWrite(t *testing.T) {
	ts := newTestServer(t)
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
}

func TestCountsMigrationCountsWhatIsThere(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	// A database as the version before the counts left it, with rows.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{sqliteMigration(t, 1), "PRAGMA user_version = 1"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []string{"go", "go", "sql"} {
		_, err := db.Exec(`INSERT INTO tutorials (title, slug, category, published_at, created_at, updated_at)
			VALUES ('T', ?, ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
			fmt.Sprintf("t%d", i), c)
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	store, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for category, want := range map[string]int64{"": 3, "go": 2, "sql": 1} {
		_, total, err := store.ListTutorials(ctx, ListParams{Page: 1, PerPage: 1, Category: category})
		if err != nil {
			t.Fatal(err)
		}
		if total != want {
			t.Errorf("category %q: total %d, want %d", category, total, want)
		}
	}
}
