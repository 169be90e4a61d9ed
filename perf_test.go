package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The mechanisms that make the server fast, held to the promises that make
// them safe: group commit, the key cache, and the kept counts. (How fast is
// measured by go run ./bench and the benchmarks, never asserted.)

// ---- Group commit ----

func TestConcurrentCreatesAllAnswerAfterTheirCommit(t *testing.T) {
	ts := newTestServer(t)
	const unique, dups = 60, 8
	statuses := make(chan int, unique+dups)
	var wg sync.WaitGroup
	post := func(slug string) {
		defer wg.Done()
		body := `{"title": "T", "slug": "` + slug + `"}`
		req, _ := http.NewRequest("POST", ts.url+"/api/v1/tutorials", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.writeKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		res.Body.Close()
		if slug == "dup" {
			statuses <- res.StatusCode
		} else if res.StatusCode != http.StatusCreated {
			t.Errorf("create %s: %d", slug, res.StatusCode)
		}
	}
	for i := range unique {
		wg.Add(1)
		go post(fmt.Sprintf("t%d", i))
	}
	for range dups {
		wg.Add(1)
		go post("dup")
	}
	wg.Wait()
	close(statuses)

	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if diff := cmp.Diff(map[int]int{http.StatusCreated: 1, http.StatusConflict: dups - 1}, count); diff != "" {
		t.Errorf("the duplicates' statuses (-want +got):\n%s", diff)
	}
	// Every 201 is already visible to another connection to the file.
	other, err := OpenStore(context.Background(), ts.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, total, err := other.ListTutorials(context.Background(), ListParams{Page: 1, PerPage: 1})
	if err != nil {
		t.Fatal(err)
	}
	if total != unique+1 {
		t.Errorf("total %d, want %d", total, unique+1)
	}
}

// ---- The key cache ----

func TestCachedKeyIsRefusedOnceRevokedElsewhere(t *testing.T) {
	ts := newTestServer(t)
	key, rec, err := issueKey(context.Background(), ts.store, "cached", scopeRead, ts.clock.now())
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
	db, err := sql.Open("sqlite", ts.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE api_keys SET active = 0 WHERE id = ?`, rec.ID); err != nil {
		t.Fatal(err)
	}
	ts.request(t, "GET", "/api/v1/tutorials", key, "").wantError(t, http.StatusUnauthorized, "Invalid or inactive API key")
}

// ---- The kept counts ----

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
