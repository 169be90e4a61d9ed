package main

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
)

// The mechanisms that make the server fast, held to the promises that make
// them safe: the key cache. (How fast is measured by go run ./bench and the
// benchmarks, never asserted.)

// ---- The key cache ----

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
	key, rec, err := issueKey(context.Background(), ts.store, APIKey{Name: "cached", Scope: scopeRead, CreatedAt: ts.clock.now()})
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

// ---- Memory given back when idle ----

func TestIdleWatchReportsEachBusySpellOnce(t *testing.T) {
	// The request count at each look, and whether that look says the
	// server has just gone idle.
	looks := []struct {
		requests int64
		idle     bool
	}{
		{0, false},  // never busy: nothing to give back
		{5, false},  // busy
		{9, false},  // still busy
		{9, true},   // quiet since the last look
		{9, false},  // given back already
		{9, false},  // and stays given back
		{10, false}, // one more request
		{10, true},  // quiet again
	}
	var w idleWatch
	for i, l := range looks {
		if got := w.wentIdle(l.requests); got != l.idle {
			t.Errorf("look %d (%d requests): wentIdle = %v, want %v", i, l.requests, got, l.idle)
		}
	}
}
