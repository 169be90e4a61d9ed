package main

// These tests hold the backup command to its promises, on both engines: a
// copy taken while writers are busy that opens as a store, and never a
// file replaced that was not meant to be.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runBackupCommand runs "tutorials backup" with args, as the command line
// would, and returns what it printed.
func runBackupCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"backup"}, args...),
		func(string) string { return "" }, &out, &out)
	return out.String(), err
}

// openCopy opens a backup as a database of its own and returns its store.
func openCopy(t *testing.T, path string) Store {
	t.Helper()
	integrityCheck(t, path)
	s, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// dirEntries lists the names in dir, to catch a temporary file left behind.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestBackupWhileWritersAreBusy takes a backup through the command line, in
// the way cron would, while clients keep creating tutorials through the
// API. The copy must hold every tutorial whose create had been answered
// before the backup began, and pass integrity_check.
func TestBackupWhileWritersAreBusy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		cfg := testConfig(t)
		cfg.rate = 0 // the writers are meant to be busy, not throttled
		ts := newTestServerWith(t, e, cfg)
		for i := range 50 {
			ts.create(t, map[string]any{"title": "Before", "slug": fmt.Sprintf("before-%d", i),
				"content": strings.Repeat("words ", 2000)})
		}

		// committed holds every slug whose create was answered 201, in order.
		// busy is closed once the writers are in full swing.
		var mu sync.Mutex
		var committed []string
		busy := make(chan struct{})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		const writers = 4
		for w := range writers {
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					slug := fmt.Sprintf("during-%d-%d", w, i)
					body := fmt.Sprintf(`{"title":"During","slug":%q,"content":"x"}`, slug)
					req, err := http.NewRequest("POST", ts.url+"/api/v1/tutorials", strings.NewReader(body))
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					req.Header.Set("Authorization", "Bearer "+ts.writeKey)
					req.Header.Set("Content-Type", "application/json")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					res.Body.Close()
					if res.StatusCode != http.StatusCreated {
						t.Errorf("writer %d: create %s: %d", w, slug, res.StatusCode)
						return
					}
					mu.Lock()
					committed = append(committed, slug)
					if len(committed) == 4*writers {
						close(busy)
					}
					mu.Unlock()
				}
			})
		}
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		stopWriters := sync.OnceFunc(func() { close(stop); <-stopped })
		defer stopWriters() // on a t.Fatal below

		// Wait until the writers are in full swing, so that the backup runs
		// among them rather than before them.
		select {
		case <-busy:
		case <-stopped:
			t.Fatal("the writers stopped before they were in full swing")
		}
		mu.Lock()
		before := append([]string{}, committed...)
		mu.Unlock()
		for i := range 50 {
			before = append(before, fmt.Sprintf("before-%d", i))
		}

		dest := filepath.Join(t.TempDir(), "copy.db")
		out, err := runBackupCommand(t, "-db", ts.db, dest)
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
		if want := fmt.Sprintf("backed up %s to %s\n", ts.db, dest); out != want {
			t.Errorf("backup printed %q, want %q", out, want)
		}

		if diff := cmp.Diff([]string{"copy.db"}, dirEntries(t, filepath.Dir(dest))); diff != "" {
			t.Errorf("files in the backup directory (-want +got):\n%s", diff)
		}

		copied := openCopy(t, dest)
		ctx := context.Background()
		var missing []string
		for _, slug := range before {
			if _, err := copied.TutorialBySlug(ctx, slug); errors.Is(err, ErrNotFound) {
				missing = append(missing, slug)
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if len(missing) > 0 {
			t.Errorf("the copy lacks %d of the %d tutorials committed before the backup: %v",
				len(missing), len(before), missing)
		}

		// The server carried on: its own database is whole, and it still writes.
		stopWriters()
		if e == sqliteEngine { // PostgreSQL has no integrity_check of its own
			integrityCheck(t, ts.db)
		}
		ts.create(t, map[string]any{"title": "After", "slug": "after", "content": "x"})
	})
}

func TestBackupRefusesToOverwrite(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		dir := t.TempDir()
		dest := filepath.Join(dir, "copy.db")
		if err := os.WriteFile(dest, []byte("an older backup"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := runBackupCommand(t, "-db", ts.db, dest)
		want := dest + " already exists (use -force to replace it)"
		if err == nil || err.Error() != want {
			t.Fatalf("backup over an existing file: got error %v, want %q", err, want)
		}
		var usage *usageError
		if errors.As(err, &usage) {
			t.Errorf("a refusal to overwrite is a failure (exit 1), not a usage error (exit 2)")
		}
		if got, _ := os.ReadFile(dest); string(got) != "an older backup" {
			t.Errorf("the existing file was changed to %q", got)
		}
		if diff := cmp.Diff([]string{"copy.db"}, dirEntries(t, dir)); diff != "" {
			t.Errorf("files left behind (-want +got):\n%s", diff)
		}
	})
}

func TestBackupForceReplacesTheOldCopy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Old", "slug": "old", "content": "x"})
		dir := t.TempDir()
		dest := filepath.Join(dir, "copy.db")
		if _, err := runBackupCommand(t, "-db", ts.db, dest); err != nil {
			t.Fatal(err)
		}
		ts.create(t, map[string]any{"title": "New", "slug": "new", "content": "x"})
		if _, err := runBackupCommand(t, "-db", ts.db, "-force", dest); err != nil {
			t.Fatalf("backup -force: %v", err)
		}
		if diff := cmp.Diff([]string{"copy.db"}, dirEntries(t, dir)); diff != "" {
			t.Errorf("files in the backup directory (-want +got):\n%s", diff)
		}
		copied := openCopy(t, dest)
		for _, slug := range []string{"old", "new"} {
			if _, err := copied.TutorialBySlug(context.Background(), slug); err != nil {
				t.Errorf("the replaced copy: tutorial %q: %v", slug, err)
			}
		}
		if fi, err := os.Stat(dest); err != nil {
			t.Fatal(err)
		} else if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("the copy has mode %v, want -rw------- like the database", perm)
		}
	})
}

// SQLite only: a backup is a SQLite file, which a PostgreSQL database is not.
func TestBackupForceNeverReplacesTheDatabaseItself(t *testing.T) {
	ts := newTestServer(t, sqliteEngine)
	ts.create(t, map[string]any{"title": "Keep", "slug": "keep", "content": "x"})
	_, err := runBackupCommand(t, "-db", ts.db, "-force", ts.db)
	if want := ts.db + " is the database itself"; err == nil || err.Error() != want {
		t.Fatalf("got error %v, want %q", err, want)
	}
	if resp := ts.request(t, "GET", "/api/v1/tutorials/keep", ts.readKey, ""); resp.status != http.StatusOK {
		t.Errorf("after the refused backup: %d %q", resp.status, resp.error)
	}
}

// SQLite only: a missing file. A PostgreSQL URL that names no database is a
// wrong URL, which the tests of faults cover.
func TestBackupOfAMissingDatabaseFails(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "typo.db")
	_, err := runBackupCommand(t, "-db", db, filepath.Join(dir, "copy.db"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got error %v, want one that says the database does not exist", err)
	}
	if names := dirEntries(t, dir); len(names) != 0 {
		t.Errorf("a failed backup left %q", names)
	}
}

func TestBackupBadUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", nil, "backup takes one file to write the copy to (flags go before it)"},
		{"two files", []string{"a.db", "b.db"}, "backup takes one file to write the copy to (flags go before it)"},
		{"flag after the file", []string{"a.db", "-force"}, "backup takes one file to write the copy to (flags go before it)"},
		{"unknown flag", []string{"-overwrite", "a.db"}, "backup: flag provided but not defined: -overwrite"},
		{"force with a value", []string{"-force=maybe", "a.db"}, `backup: invalid boolean value "maybe" for -force: parse error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runBackupCommand(t, tt.args...)
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("got %v, want a usage error (exit 2)", err)
			}
			if err.Error() != tt.want {
				t.Errorf("message %q, want %q", err.Error(), tt.want)
			}
		})
	}
}
