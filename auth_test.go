package main

// These tests hold the key check to the contract: missing, malformed,
// unknown and revoked keys, scopes, when a key was last used, and the keys
// and bodies that never reach the log.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ---- Authentication ----

func TestAuthentication(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		revoked, rec, err := issueKey(context.Background(), ts.store, APIKey{Name: "old", Scope: scopeWrite, CreatedAt: ts.clock.now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.store.RevokeKey(context.Background(), rec.ID); err != nil {
			t.Fatal(err)
		}

		const (
			challenge = `Bearer realm="api"`
			invalid   = `Bearer realm="api", error="invalid_token"`
		)
		tests := []struct {
			name          string
			authorization string // "" sends no header
			status        int
			msg           string
			wwwAuth       string
		}{
			{"no header", "", 401, "Missing Authorization header", challenge},
			{"empty header", " ", 401, "Missing Authorization header", challenge},
			{"basic scheme", "Basic dXNlcjpwYXNz", 401, "Authorization header must be: Bearer <key>", challenge},
			{"scheme alone", "Bearer", 401, "Authorization header must be: Bearer <key>", challenge},
			{"scheme and spaces", "Bearer   ", 401, "Authorization header must be: Bearer <key>", challenge},
			{"two tokens", "Bearer " + ts.writeKey + " " + ts.writeKey, 401, "Authorization header must be: Bearer <key>", challenge},
			{"tab after the scheme", "Bearer \t" + ts.writeKey, 401, "Authorization header must be: Bearer <key>", challenge},
			{"no-break space after the key", "Bearer " + ts.writeKey + "\u00a0", 401, "Invalid or inactive API key", invalid},
			{"bare key", ts.writeKey, 401, "Authorization header must be: Bearer <key>", challenge},
			{"unknown key", "Bearer tut_" + strings.Repeat("0", 64), 401, "Invalid or inactive API key", invalid},
			{"not a key at all", "Bearer hunter2", 401, "Invalid or inactive API key", invalid},
			{"key in capitals", "Bearer " + strings.ToUpper(ts.writeKey), 401, "Invalid or inactive API key", invalid},
			{"revoked key", "Bearer " + revoked, 401, "Invalid or inactive API key", invalid},
			{"scheme in lower case", "bearer " + ts.readKey, 200, "", ""},
			{"scheme in capitals", "BEARER " + ts.readKey, 200, "", ""},
			{"read key", "Bearer " + ts.readKey, 200, "", ""},
			{"write key", "Bearer " + ts.writeKey, 200, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, path := range []string{"/api/v1/tutorials", "/api/v1/tutorials/go"} {
					resp := ts.request(t, "GET", path, "", "", "Authorization", tt.authorization)
					if tt.status == http.StatusOK {
						if resp.status != http.StatusOK {
							t.Errorf("GET %s: %d %q, want 200", path, resp.status, resp.error)
						}
						continue
					}
					resp.wantError(t, tt.status, tt.msg)
					if got := resp.header.Get("WWW-Authenticate"); got != tt.wwwAuth {
						t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wwwAuth)
					}
				}
			})
		}

		t.Run("every route needs a key", func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/api/v1/tutorials", ""},
				{"GET", "/api/v1/tutorials/go", ""},
				{"POST", "/api/v1/tutorials", `{"title":"a","slug":"a"}`},
				{"PATCH", "/api/v1/tutorials/go", `{"title":"a"}`},
				{"PUT", "/api/v1/tutorials/go", `{"title":"a","slug":"go"}`},
				{"DELETE", "/api/v1/tutorials/go", ""},
			} {
				ts.request(t, r.method, r.path, "", r.body).wantError(t, http.StatusUnauthorized, "Missing Authorization header")
			}
		})

		t.Run("a read key cannot write", func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{"POST", "/api/v1/tutorials", `{"title":"a","slug":"a"}`},
				{"PATCH", "/api/v1/tutorials/go", `{"title":"a"}`},
				{"PUT", "/api/v1/tutorials/go", `{"title":"a","slug":"go"}`},
				{"DELETE", "/api/v1/tutorials/go", ""},
			} {
				ts.request(t, r.method, r.path, ts.readKey, r.body).wantError(t, http.StatusForbidden, "This API key is read-only")
			}
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if got.Title != "Go" || ts.count(t) != 1 {
				t.Errorf("a read key changed something: %+v, %d tutorials", got, ts.count(t))
			}
		})
	})
}

func TestKeysAndBodiesNeverReachTheLog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Secret title", "slug": "go", "content": "secret content"})
		ts.request(t, "GET", "/api/v1/tutorials?category=private-query", ts.writeKey, "")
		ts.request(t, "GET", "/api/v1/tutorials", "tut_"+strings.Repeat("a", 64), "")
		logs := ts.logs.String()
		for _, secret := range []string{ts.writeKey, ts.writeKey[len(keyPrefix):], strings.Repeat("a", 64), "Bearer",
			"Secret title", "secret content", "private-query"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds %q:\n%s", secret, logs)
			}
		}
		if !strings.Contains(logs, "path=/api/v1/tutorials status=201") {
			t.Errorf("the log has no line for the create:\n%s", logs)
		}
	})
}

func TestLastUsedIsKeptInMemoryUntilSaved(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ctx := context.Background()
		ts.clock.advance(time.Hour)
		used := ts.clock.now()
		ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")

		// lastUsed maps each key's name to its last_used_at; zero for never.
		lastUsed := func() map[string]time.Time {
			keys, err := ts.store.APIKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]time.Time{}
			for _, k := range keys {
				seen[k.Name] = k.LastUsedAt
			}
			return seen
		}
		if diff := cmp.Diff(map[string]time.Time{"writer": {}, "reader": {}}, lastUsed()); diff != "" {
			t.Errorf("before saving, a request wrote last_used_at (-want +got):\n%s", diff)
		}
		if err := ts.usage.Save(ctx, ts.store.SaveLastUsed); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]time.Time{"writer": {}, "reader": used}, lastUsed()); diff != "" {
			t.Errorf("after saving (-want +got):\n%s", diff)
		}
	})
}
