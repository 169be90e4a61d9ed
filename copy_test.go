package main

// tutorials copy FROM TO, in every direction between the engines, and the
// URLs that do not work.

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"tutorials/internal/lastused"

	"github.com/google/go-cmp/cmp"
)

// dump is everything a store holds, as Dump gives it.
type dump struct {
	Tutorials []Tutorial
	Keys      []APIKey
	Hashes    [][]byte
	Last      [2]int64 // what LastIDs gave
}

func (d *dump) Tutorial(_ context.Context, t Tutorial) error {
	d.Tutorials = append(d.Tutorials, t)
	return nil
}

func (d *dump) Key(_ context.Context, k APIKey, hash []byte) error {
	d.Keys, d.Hashes = append(d.Keys, k), append(d.Hashes, hash)
	return nil
}

func (d *dump) LastIDs(_ context.Context, tutorial, key int64) error {
	d.Last = [2]int64{tutorial, key}
	return nil
}

// dumpOf reads everything in the database db.
func dumpOf(t *testing.T, db string) dump {
	t.Helper()
	store, err := OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var d dump
	if err := store.Dump(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// seedForCopy fills ts's database with what a copy must carry: tutorials
// with every kind of field, one changed (version 2), the newest deleted (so
// that the last id given is not the largest there is), a revoked key, a key
// with its own limit and one that has been used.
func seedForCopy(t *testing.T, ts *testServer) {
	t.Helper()
	ts.create(t, map[string]any{"title": "Über Go", "slug": "uber-go", "content": "Grüße", "excerpt": "e",
		"category": "go", "difficulty": "advanced", "estimated_time": 42, "published_at": "2020-01-02T03:04:05+01:00"})
	ts.create(t, map[string]any{"title": "Second", "slug": "second"})
	ts.request(t, "PATCH", "/api/v1/tutorials/second", ts.writeKey, `{"estimated_time":null,"title":"Second, changed"}`,
		"Content-Type", "application/json")
	ts.create(t, map[string]any{"title": "Gone", "slug": "gone"})
	ts.request(t, "DELETE", "/api/v1/tutorials/gone", ts.writeKey, "")
	ctx := context.Background()
	if err := ts.store.RevokeKey(ctx, 2); err != nil {
		t.Fatal(err)
	}
	_, _, err := issueKey(ctx, ts.store, APIKey{Name: "limited", Scope: scopeRead, Limit: &KeyLimit{Rate: 2.5, Burst: 7}, CreatedAt: ts.clock.now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.store.SaveLastUsed(ctx, map[int64]time.Time{1: ts.clock.now()}); err != nil {
		t.Fatal(err)
	}
}

func TestCopyBetweenEngines(t *testing.T) {
	for _, dir := range []struct{ from, to engine }{
		{sqliteEngine, postgresEngine},
		{postgresEngine, sqliteEngine},
		{sqliteEngine, sqliteEngine},
		{postgresEngine, postgresEngine},
	} {
		t.Run(string(dir.from)+"-to-"+string(dir.to), func(t *testing.T) {
			src := newTestServer(t, dir.from)
			seedForCopy(t, src)
			want := dumpOf(t, src.db)
			etag := src.request(t, "GET", "/api/v1/tutorials/second", src.writeKey, "").header.Get("ETag")

			to := newTestDB(t, dir.to)
			out, _, err := runCommand(t, "copy", src.db, to)
			if err != nil {
				t.Fatalf("copy: %v", err)
			}
			if !strings.HasPrefix(out, "copied 2 tutorials and 3 keys from ") {
				t.Errorf("copy printed %q", out)
			}
			if diff := cmp.Diff(want, dumpOf(t, to)); diff != "" {
				t.Errorf("the copy differs (-source +copy):\n%s", diff)
			}

			// The copy serves as the source did: its keys work, ETags
			// hold, and ids go on after the deleted one.
			dst := &testServer{engine: dir.to, db: to, usage: lastused.New(), logs: &syncBuffer{}, clock: src.clock, writeKey: src.writeKey, readKey: src.readKey}
			store, err := OpenStore(context.Background(), to)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			dst.store = store
			serveTestDatabase(t, dst, testConfig(t))
			resp := dst.request(t, "GET", "/api/v1/tutorials/second", dst.writeKey, "")
			if resp.status != http.StatusOK || resp.header.Get("ETag") != etag {
				t.Errorf("GET on the copy with the source's key: %d, ETag %q, want 200 and %q", resp.status, resp.header.Get("ETag"), etag)
			}
			dst.request(t, "GET", "/api/v1/tutorials", dst.readKey, "").wantError(t, http.StatusUnauthorized, msgInvalidKey)
			if got := dst.create(t, map[string]any{"title": "After", "slug": "after"}).ID; got != 4 {
				t.Errorf("the first tutorial after the copy has id %d, want 4 (3 was deleted at the source)", got)
			}
			page := decodeData[tutorialPage](t, dst.request(t, "GET", "/api/v1/tutorials", dst.writeKey, ""))
			if got := page.Total; got != 3 { // the list's total, from the counts the copy made
				t.Errorf("the copy lists %d tutorials after one more, want 3", got)
			}
		})
	}
}

func TestCopyRefusesATargetWithData(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		src := newTestServer(t, sqliteEngine)
		src.create(t, map[string]any{"title": "Source", "slug": "source"})
		dst := newTestServer(t, e) // holds its two keys
		dst.create(t, map[string]any{"title": "Target", "slug": "target"})
		before := dumpOf(t, dst.db)

		_, _, err := runCommand(t, "copy", src.db, dst.db)
		if err == nil || !strings.Contains(err.Error(), "already holds tutorials or keys") {
			t.Fatalf("copy into a database with data: %v, want a refusal", err)
		}
		if diff := cmp.Diff(before, dumpOf(t, dst.db)); diff != "" {
			t.Errorf("the refused target changed (-before +after):\n%s", diff)
		}
	})
}

func TestCopyBadUsage(t *testing.T) {
	db := newTestDB(t, sqliteEngine)
	for _, args := range [][]string{{"copy"}, {"copy", db}, {"copy", db, db}, {"copy", "a", "b", "c"}} {
		_, _, err := runCommand(t, args...)
		if _, ok := err.(*usageError); !ok {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if _, _, err := runCommand(t, "copy", db+".missing", newTestDB(t, sqliteEngine)); err == nil {
		t.Errorf("copy from a missing file succeeded")
	}
}

// A URL that does not work stops a command with one line that names what
// failed and never the password.
func TestPostgresURLsThatDoNotWork(t *testing.T) {
	good := newTestDB(t, postgresEngine)
	noDB := strings.Replace(good, "/tutorials_test_", "/no_such_database_", 1)
	for _, tc := range []struct{ name, db, want string }{
		{"no server", "postgres://alice:s3cret-pw@127.0.0.1:1/tutorials", "connect"},
		{"no such database", strings.Replace(noDB, "postgres@", "postgres:s3cret-pw@", 1), "does not exist"},
		{"no such host", "postgresql://alice:s3cret-pw@no-such-host.invalid/tutorials", "no-such-host.invalid"},
		{"not a URL", "postgres://alice:s3cret-pw@[::1/x", "not a valid PostgreSQL URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCommand(t, "keys", "list", "-db", tc.db)
			if err == nil {
				t.Fatal("keys list succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "s3cret-pw") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line with %q and no password", msg, tc.want)
			}
		})
	}
}

// A wrong password, on a server that asks for one: one line that says so,
// and neither password in it.
func TestWrongPostgresPasswordIsOneLine(t *testing.T) {
	c, db := ownPostgres(t)
	admin := openSQL(t, db)
	if _, err := admin.Exec(`ALTER ROLE postgres PASSWORD 'the-right-pw'`); err != nil {
		t.Fatal(err)
	}
	// Connections over TCP must now prove the password; the socket stays
	// open to the test's own admin connection should it need it.
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(c.dir, "data", "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Replace(db, "postgres@", "postgres:the-wrong-pw@", 1)
	_, _, err := runCommand(t, "keys", "list", "-db", wrong)
	if err == nil {
		t.Fatal("keys list with a wrong password succeeded")
	}
	msg := err.Error()
	if !strings.Contains(msg, "password authentication failed") || strings.Contains(msg, "-pw") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line that says the password failed, without it", msg)
	}
	right := strings.Replace(db, "postgres@", "postgres:the-right-pw@", 1)
	if _, _, err := runCommand(t, "keys", "list", "-db", right); err != nil {
		t.Errorf("keys list with the right password: %v", err)
	}
}
