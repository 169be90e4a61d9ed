package main

// These tests check that the bench's databases hold what the server reads,
// on both engines.

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestNewDatabaseSeedsWhatTheServerReads checks the bench's database the
// way the server will read it: the rows are there with the content the
// cases assume, and the tables the triggers keep (counts, search index)
// agree with them, so that the benchmark measures a database like a real
// one. It builds the server, as the bench does.
func TestNewDatabaseSeedsWhatTheServerReads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tutorials")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "bench.db")
	const rows = 60
	key, _, err := newDatabase(bin, path, rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != len("tut_")+64 {
		t.Errorf("key = %q, want a tut_ key", key)
	}

	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	checks := []struct {
		name, query string
		want        string
	}{
		{"rows", `SELECT COUNT(*) FROM tutorials`, "60"},
		{"slugs tutorial-1 to tutorial-n", `SELECT COUNT(*) FROM tutorials WHERE slug = 'tutorial-' || id`, "60"},
		{"40 to 80 words of content each", `SELECT MIN(n) >= 40 AND MAX(n) <= 80 FROM
			(SELECT length(content) - length(replace(content, ' ', '')) AS n FROM tutorials)`, "1"},
		{"every combination of category and difficulty", `SELECT COUNT(*) FROM (SELECT DISTINCT category, difficulty FROM tutorials)`, "18"},
		{"every category", `SELECT COUNT(DISTINCT category) FROM tutorials`, "6"},
		{"counts agree", `SELECT SUM(n) FROM tutorial_counts`, "60"},
		{"search index agrees", `SELECT COUNT(*) FROM tutorials_fts WHERE tutorials_fts MATCH 'benchmark'`, "60"},
		{"every word of the index in the list of words", `SELECT COUNT(*) FROM tutorials_fts_terms WHERE term NOT IN (SELECT term FROM tutorials_terms)`, "0"},
		{"nothing left to fold", `SELECT (SELECT COUNT(*) FROM tutorials_unfolded) + (SELECT COUNT(*) FROM tutorials_unfolded_ids)`, "0"},
		{"back in WAL mode", `PRAGMA journal_mode`, "wal"},
		{"intact", `PRAGMA integrity_check`, "ok"},
	}
	for _, c := range checks {
		var got string
		if err := db.QueryRowContext(ctx, c.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.name, c.query, got, c.want)
		}
	}
}

// TestPostgresDatabaseSeedsWhatTheServerReads is the same check on
// PostgreSQL: the bench's seed of a database made by "keys create" holds
// the tutorials the cases assume, the triggers' search column and counts
// agree with them, the indexes it dropped to copy faster are all back, and
// the server's next id follows the seeded ones. It starts a throwaway
// PostgreSQL, as the bench does, and skips where there is none.
func TestPostgresDatabaseSeedsWhatTheServerReads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and starts PostgreSQL")
	}
	c, err := startCluster()
	if err != nil {
		t.Skip("no PostgreSQL to start:", err)
	}
	defer c.stop()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tutorials")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx := context.Background()
	const rows = 60
	dbURL, exists, err := c.database(ctx, "unseeded")
	if err != nil || exists {
		t.Fatal(exists, err)
	}
	if _, err := newKey(bin, dbURL); err != nil {
		t.Fatal(err)
	}
	const indexes = `SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'tutorials'`
	var want string
	conn, err := pgx.Connect(ctx, dbURL)
	if err == nil {
		err = conn.QueryRow(ctx, indexes).Scan(&want)
		conn.Close(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	dbURL, key, err := newPostgresDatabase(ctx, c, bin, "bench", rows, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != len("tut_")+64 {
		t.Errorf("key = %q, want a tut_ key", key)
	}
	conn, err = pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	checks := []struct {
		name, query string
		want        string
	}{
		{"rows", `SELECT count(*) FROM tutorials`, "60"},
		{"slugs tutorial-1 to tutorial-n", `SELECT count(*) FROM tutorials WHERE slug = 'tutorial-' || id`, "60"},
		{"40 to 80 words of content each", `SELECT min(n) >= 40 AND max(n) <= 80 FROM
			(SELECT length(content) - length(replace(content, ' ', '')) AS n FROM tutorials) AS w`, "true"},
		{"every combination of category and difficulty", `SELECT count(*) FROM (SELECT DISTINCT category, difficulty FROM tutorials) AS c`, "18"},
		{"counts agree", `SELECT sum(n) FROM tutorial_counts`, "60"},
		{"search column agrees", `SELECT count(*) FROM tutorials WHERE search @@ tutorials_search('{benchmark}')`, "60"},
		{"the content both engines are seeded with", `SELECT left(content, 30) FROM tutorials WHERE id = 1`, firstSeededContent(t)},
		{"every index back", indexes, want},
		{"the next id follows", `SELECT last_value FROM tutorials_id_seq`, "60"},
	}
	for _, c := range checks {
		var got string
		if err := conn.QueryRow(ctx, `SELECT (`+c.query+`)::text`).Scan(&got); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.name, c.query, got, c.want)
		}
	}
}

// firstSeededContent is how the content of the first tutorial the bench
// seeds begins.
func firstSeededContent(t *testing.T) string {
	var first string
	seedTutorials(1, func(s seedTutorial) error {
		first = s.content[:30]
		return nil
	})
	return first
}
