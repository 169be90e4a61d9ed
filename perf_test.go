package main

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// The mechanisms that make the server fast, held to the promises that make
// them safe: group commit, the key cache, and the kept counts. (How fast is
// measured by go run ./bench and the benchmarks, never asserted.)

// openTestStore opens a store on a fresh file in t.TempDir().
func openTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	store, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, path
}

// ---- The key cache ----

func TestDataVersionMovesOnlyWhenSomeoneCommits(t *testing.T) {
	store, path := openTestStore(t)
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		v, err := store.DataVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v1 := version()
	if v2 := version(); v2 != v1 {
		t.Errorf("nothing written, but the version went from %d to %d", v1, v2)
	}
	// A commit of this store's own writer.
	if _, _, err := issueKey(ctx, store, "k", scopeWrite); err != nil {
		t.Fatal(err)
	}
	v3 := version()
	if v3 == v1 {
		t.Error("a commit of this store left the version as it was")
	}
	// A commit of another process, here another store on the same file.
	other, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.RevokeKey(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if version() == v3 {
		t.Error("a commit of another connection left the version as it was")
	}
}

func TestKeyCacheServesOnlyItsOwnVersion(t *testing.T) {
	var c keyCache
	hash := hashKey("tut_" + strings.Repeat("0", 64))
	key := APIKey{ID: 7, Scope: scopeRead, Active: true}
	if _, ok := c.get(hash, 1); ok {
		t.Error("an empty cache had a key")
	}
	c.put(hash, 1, key)
	if got, ok := c.get(hash, 1); !ok || got != key {
		t.Errorf("get at the version it was put: %v %v, want %v", got, ok, key)
	}
	if _, ok := c.get(hash, 2); ok {
		t.Error("the key outlived a change of version")
	}
	if _, ok := c.get(hashKey("tut_"+strings.Repeat("1", 64)), 1); ok {
		t.Error("another key's hash found a key")
	}
}

func TestCachedKeyIsRefusedOnceRevokedElsewhere(t *testing.T) {
	ts := newTestServer(t)
	key, rec, err := issueKey(context.Background(), ts.store, "cached", scopeRead)
	if err != nil {
		t.Fatal(err)
	}
	// Several requests: the key is in the cache after the first.
	for range 3 {
		if resp := ts.request(t, "GET", "/api/v1/tutorials", key, ""); resp.status != http.StatusOK {
			t.Fatalf("before revoking: %d %q", resp.status, resp.error)
		}
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
