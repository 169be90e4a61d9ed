package sqlitedb

// The machinery held to the promises that make it safe: group commit,
// checkpoints, change detection, statement reuse and the file's setup.
// (How fast it is is measured by go run ./bench, never asserted.) The
// tests use a schema of their own: nothing here knows about tutorials.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const testSchema = `-- migration 1: notes
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE);
-- migration 2: a second step, to see that steps run in order
ALTER TABLE notes ADD COLUMN pad TEXT NOT NULL DEFAULT '';
`

// openTest opens a database on a fresh file in t.TempDir(). Checkpoints
// run only when a test runs checkpointRound, unless opts say otherwise.
func openTest(t *testing.T, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = -1
	}
	db, err := Open(context.Background(), path, testSchema, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// insert is a write that adds a note.
func insert(body string) func(context.Context, *Tx) error {
	return func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO notes (body, pad) VALUES (?, ?)", body, "")
		return err
	}
}

// pageSized is a write of a note that fills about one 4 KiB page, so that
// every one adds pages to the WAL.
func pageSized(body string) func(context.Context, *Tx) error {
	return func(ctx context.Context, tx *Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO notes (body, pad) VALUES (?, ?)", body, strings.Repeat("x", 4000))
		return err
	}
}

// notes returns the bodies of every note, as another process sees them.
func notes(t *testing.T, path string) []string {
	t.Helper()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rows, err := other.Query("SELECT body FROM notes ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	return got
}

// ---- Group commit ----

func TestBatchCommitsEachWriteOrUndoesItAlone(t *testing.T) {
	db, path := openTest(t, Options{})
	ctx := context.Background()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	errBoom := errors.New("boom")

	// One batch, as commitBatches would hand it over.
	batch := []*pendingWrite{
		{ctx: ctx, fn: insert("first")},
		{ctx: ctx, fn: insert("taken")},
		{ctx: ctx, fn: insert("taken")}, // the same body again
		{ctx: ctx, fn: func(ctx context.Context, tx *Tx) error {
			// Writes, then fails: its write must go with it.
			if err := insert("undone")(ctx, tx); err != nil {
				return err
			}
			return errBoom
		}},
		{ctx: gone, fn: insert("caller gone")},
		{ctx: ctx, fn: insert("last")},
	}
	for _, p := range batch {
		p.done = make(chan error, 1)
	}
	db.writes.commitBatch(batch)

	var got []string
	for _, p := range batch {
		switch err := <-p.done; {
		case err == nil:
			got = append(got, "committed")
		case IsUniqueViolation(err):
			got = append(got, "unique violation")
		default:
			got = append(got, err.Error())
		}
	}
	want := []string{"committed", "committed", "unique violation", "boom", "context canceled", "committed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"first", "taken", "last"}, notes(t, path)); diff != "" {
		t.Errorf("on disk (-want +got):\n%s", diff)
	}
}

func TestEveryBatchEndsWithItsUpkeep(t *testing.T) {
	// The upkeep marks the notes written since it last ran.
	opts := Options{CheckpointEvery: -1, BatchEnd: []string{`UPDATE notes SET pad = 'kept' WHERE pad = ''`}}
	path := filepath.Join(t.TempDir(), "test.db")
	ctx := context.Background()

	// A note written while no program had the database open...
	db, err := Open(ctx, path, testSchema, Options{CheckpointEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`INSERT INTO notes (body) VALUES ('written while closed')`); err != nil {
		t.Fatal(err)
	}
	pads := func() []string {
		t.Helper()
		var got []string
		rows, err := other.Query(`SELECT body || ': ' || pad FROM notes ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			rows.Scan(&s)
			got = append(got, s)
		}
		return got
	}

	// ...is kept by a batch of its own once the database opens...
	db, err = Open(ctx, path, testSchema, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := []string{"written while closed: kept"}
	for deadline := time.Now().Add(10 * time.Second); !slices.Equal(pads(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("after open: %q, want %q", pads(), want)
		}
		time.Sleep(time.Millisecond)
	}
	// ...and a write by the batch it is in: when the write returns, its
	// upkeep is done.
	if err := db.Write(ctx, insert("written")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"written while closed: kept", "written: kept"}, pads()); diff != "" {
		t.Errorf("after a write (-want +got):\n%s", diff)
	}
}

func TestWritesFromManyCallersAllCommit(t *testing.T) {
	db, path := openTest(t, Options{})
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if err := db.Write(context.Background(), insert(fmt.Sprintf("n%02d", i))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(notes(t, path)); n != 64 {
		t.Errorf("%d notes on disk, want 64", n)
	}
}

func TestWriteAfterCloseFailsAtOnce(t *testing.T) {
	db, _ := openTest(t, Options{})
	db.Close()
	if err := db.Write(context.Background(), insert("late")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want %v", err, ErrClosed)
	}
	if _, err := db.Version(context.Background()); err == nil {
		t.Error("Version after Close: no error")
	}
}

// ---- Checkpoints ----

// walFile returns the size of the WAL of the database at path and its
// checkpoint sequence number, which SQLite increments each time the WAL
// starts over from its beginning (https://sqlite.org/fileformat.html, the
// WAL header). A WAL that does not exist is (0, 0).
func walFile(t *testing.T, path string) (size int64, sequence uint32) {
	t.Helper()
	f, err := os.Open(path + "-wal")
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	header := make([]byte, 32)
	if _, err := f.ReadAt(header, 0); err != nil {
		return fi.Size(), 0 // empty, or not yet written
	}
	return fi.Size(), binary.BigEndian.Uint32(header[12:16])
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCheckpointsCopyTheWALThenEmptyIt(t *testing.T) {
	db, path := openTest(t, Options{})
	ctx := context.Background()
	before := fileSize(t, path)
	for i := range 20 {
		if err := db.Write(ctx, pageSized(fmt.Sprintf("n%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	// No commit checkpoints (wal_autocheckpoint is off): the pages are in
	// the WAL alone until a round copies them.
	if size := fileSize(t, path); size != before {
		t.Fatalf("the database file grew from %d to %d bytes before any checkpoint", before, size)
	}
	db.writes.checkpointRound()
	if size := fileSize(t, path); size < before+20*4000 {
		t.Errorf("after a round the database file is %d bytes, want at least %d", size, before+20*4000)
	}
	if size, _ := walFile(t, path); size == 0 {
		t.Fatal("the WAL is empty while writes may still come")
	}
	// A round that finds nothing new since the last one empties the WAL.
	db.writes.checkpointRound()
	if size, _ := walFile(t, path); size != 0 {
		t.Errorf("after a quiet round the WAL is %d bytes, want 0", size)
	}
}

// Under writes that never pause, the WAL must still start over from its
// beginning now and then; otherwise it grows for as long as the writes last.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	db, path := openTest(t, Options{WALLimit: 64}) // 256 KiB of WAL
	ctx, stop := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if err := db.Write(ctx, pageSized(fmt.Sprintf("w%d-%d", w, i))); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer writers.Wait()
	defer stop()

	_, first := walFile(t, path)
	// A round asks the writer to start the WAL over once it is past the
	// limit; with writes under way, the next few rounds must see it done.
	for round := 0; ; round++ {
		size, sequence := walFile(t, path)
		if sequence >= first+2 {
			break // started over twice
		}
		if round == 1000 {
			t.Fatalf("after %d rounds of steady writes the WAL is %d bytes and started over %d times, want 2", round, size, sequence-first)
		}
		db.writes.checkpointRound()
		time.Sleep(time.Millisecond) // let a batch or two commit between rounds
	}
}

// Emptying the WAL waits for every reader to leave it. A reader that stays,
// a backup say, must not make writes wait behind that.
func TestEmptyingTheWALDoesNotHoldUpWrites(t *testing.T) {
	db, path := openTest(t, Options{})
	ctx := context.Background()
	if err := db.Write(ctx, insert("first")); err != nil {
		t.Fatal(err)
	}
	// A reader of another process, in the WAL before it is copied.
	other, err := sql.Open("sqlite", dsn(path, lockWait, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	reader, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer reader.ExecContext(ctx, "ROLLBACK")
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
		t.Fatal(err)
	}

	// Two quiet rounds: the first copies, the second tries to empty the
	// WAL while the reader is still in it, and must give up at once.
	db.writes.checkpointRound()
	db.writes.checkpointRound()
	// The busy timeout is 5 s: a write that waited for the emptying to
	// give up would miss this deadline.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.Write(wctx, insert("second")); err != nil {
		t.Fatalf("a write while a reader held the WAL: %v", err)
	}
}

// ---- Change detection ----

func TestVersionMovesOnlyWhenSomeoneCommits(t *testing.T) {
	db, path := openTest(t, Options{})
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		v, err := db.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	if v := version(); v != v0 {
		t.Errorf("the version moved from %d to %d with no commit", v0, v)
	}
	if err := db.Write(ctx, insert("mine")); err != nil {
		t.Fatal(err)
	}
	v1 := version()
	if v1 <= v0 {
		t.Errorf("the version went from %d to %d after this database's own write, want it to grow", v0, v1)
	}
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec("INSERT INTO notes (body) VALUES ('theirs')"); err != nil {
		t.Fatal(err)
	}
	if v := version(); v <= v1 {
		t.Errorf("the version went from %d to %d after another process's write, want it to grow", v1, v)
	}
	// A read by another process is no change.
	v2 := version()
	var n int
	if err := other.QueryRow("SELECT count(*) FROM notes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v2 {
		t.Errorf("the version moved from %d to %d after a read", v2, v)
	}
}

// A caller that asks after a commit must get a version no one had before
// the commit, even while many others are asking at once and share readings.
func TestVersionAfterACommitIsNewWhateverOthersAsk(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx, stop := context.WithCancel(context.Background())
	var askers sync.WaitGroup
	for range 8 {
		askers.Go(func() {
			for ctx.Err() == nil {
				db.Version(ctx)
			}
		})
	}
	defer askers.Wait()
	defer stop()
	for round := range 200 {
		before, err := db.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(context.Background(), insert(fmt.Sprintf("n%d", round))); err != nil {
			t.Fatal(err)
		}
		after, err := db.Version(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if after <= before {
			t.Fatalf("round %d: the version was %d before a commit and %d after, want it to grow", round, before, after)
		}
	}
}

// ---- Reads ----

func TestReadTxSeesOneSnapshot(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	if err := db.Write(ctx, insert("before")); err != nil {
		t.Fatal(err)
	}
	var first, second int
	err := db.ReadTx(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&first); err != nil {
			return err
		}
		if err := db.Write(ctx, insert("during")); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&second)
	})
	if err != nil {
		t.Fatal(err)
	}
	if first != 1 || second != 1 {
		t.Errorf("counts %d then %d inside one read transaction, want 1 and 1", first, second)
	}
}

func TestFirstReadTxsAtOnceDoNotDeadlockThePool(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx := context.Background()
	// Leave one free read connection, then run sixteen read transactions
	// of queries not compiled yet, at once. Compiling one on the pool
	// while a transaction holds the last connection would wait forever.
	for range readConns - 1 {
		conn, err := db.read.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			query := fmt.Sprintf("SELECT count(*) + %d FROM notes", i)
			err := db.ReadTx(tctx, func(tx *Tx) error {
				var n int
				return tx.QueryRowContext(tctx, query).Scan(&n)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// ---- The file ----

func TestOpenSetsUpTheFile(t *testing.T) {
	db, path := openTest(t, Options{})
	pragmas := func(conn *sql.DB, names ...string) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, p := range names {
			var v string
			if err := conn.QueryRow("PRAGMA " + p).Scan(&v); err != nil {
				t.Fatal(err)
			}
			got[p] = v
		}
		return got
	}
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1",
		"busy_timeout": "5000", "user_version": "2"}
	if diff := cmp.Diff(want, pragmas(db.write, "journal_mode", "synchronous", "foreign_keys", "busy_timeout", "user_version")); diff != "" {
		t.Errorf("pragmas of the writer (-want +got):\n%s", diff)
	}
	// The read connections refuse writes and keep a small page cache.
	if diff := cmp.Diff(map[string]string{"query_only": "1", "cache_size": "-256"}, pragmas(db.read, "query_only", "cache_size")); diff != "" {
		t.Errorf("pragmas of the read pool (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("the database file has mode %o, want 600", mode)
	}
}

func TestMigrationsRunOnceInOrder(t *testing.T) {
	_, path := openTest(t, Options{})
	// Opening again runs nothing twice: the ALTER TABLE of migration 2
	// would fail if it ran again.
	db, err := Open(context.Background(), path, testSchema, Options{CheckpointEvery: -1})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	db.Close()
	// A program older than its database refuses it.
	old := strings.SplitAfter(testSchema, "\n-- migration 2")[0]
	if _, err := Open(context.Background(), path, old, Options{CheckpointEvery: -1}); err == nil ||
		!strings.Contains(err.Error(), "newer than this program") {
		t.Errorf("Open with an older schema: %v, want a refusal", err)
	}
}

func TestMigrationsMustBeNumberedInOrder(t *testing.T) {
	_, err := migrations("-- migration 1: a\nSELECT 1;\n-- migration 3: c\nSELECT 3;\n")
	if want := "schema: migration 3 follows migration 1"; err == nil || err.Error() != want {
		t.Errorf("migrations = %v, want %q", err, want)
	}
}

// The server needs WAL: a database whose journal mode cannot be WAL is
// refused with a reason, not run without.
func TestRequireWALRefusesAnotherJournalMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollback.db")
	conn, err := sql.Open("sqlite", path) // SQLite's default: a rollback journal
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = requireWAL(context.Background(), conn)
	if want := `the database is in journal mode "delete", not WAL, and cannot be switched`; err == nil || err.Error() != want {
		t.Errorf("requireWAL = %v, want %q", err, want)
	}
}
