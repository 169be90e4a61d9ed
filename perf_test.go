package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// ---- Group commit ----

func TestBatchCommitsEachWriteOrUndoesItAlone(t *testing.T) {
	store, path := openTestStore(t)
	ctx := context.Background()
	now := time.Now()
	input := func(slug string) TutorialInput {
		return TutorialInput{Title: slug, Slug: slug, Category: "backend", Difficulty: "beginner"}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	errBoom := errors.New("boom")
	var rows [6]Tutorial

	// One batch, as commitBatches would hand it over.
	batch := []*pendingWrite{
		{ctx: ctx, fn: store.insertTutorial(input("first"), now, &rows[0])},
		{ctx: ctx, fn: store.insertTutorial(input("taken"), now, &rows[1])},
		{ctx: ctx, fn: store.insertTutorial(input("taken"), now, &rows[2])}, // the same slug again
		{ctx: ctx, fn: func(ctx context.Context, tx *sql.Tx) error {
			// Writes, then fails: its write must go with it.
			if err := store.insertTutorial(input("undone"), now, &rows[3])(ctx, tx); err != nil {
				return err
			}
			return errBoom
		}},
		{ctx: gone, fn: store.insertTutorial(input("client-gone"), now, &rows[4])},
		{ctx: ctx, fn: store.insertTutorial(input("last"), now, &rows[5])},
	}
	for _, p := range batch {
		p.done = make(chan error, 1)
	}
	store.commitBatch(batch)

	// Each write's outcome, by name.
	var got []string
	for _, p := range batch {
		switch err := <-p.done; {
		case err == nil:
			got = append(got, "committed")
		case isUniqueViolation(err):
			got = append(got, "slug taken")
		default:
			got = append(got, err.Error())
		}
	}
	want := []string{"committed", "committed", "slug taken", "boom", "context canceled", "committed"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	// What is on disk, seen from another connection, as another process
	// would see it.
	other, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for slug, want := range map[string]error{"first": nil, "taken": nil, "last": nil,
		"undone": ErrNotFound, "client-gone": ErrNotFound} {
		if _, err := other.TutorialBySlug(ctx, slug); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", slug, err, want)
		}
	}
	list, total, err := other.ListTutorials(ctx, ListParams{Page: 1, PerPage: 100})
	if err != nil {
		t.Fatal(err)
	}
	if total != 3 || len(list) != 3 {
		t.Errorf("total %d, %d listed, want 3 and 3", total, len(list))
	}
}

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

func TestWriteAfterCloseFailsAtOnce(t *testing.T) {
	store, _ := openTestStore(t)
	store.Close()
	in := TutorialInput{Title: "Go", Slug: "go", Category: "backend", Difficulty: "beginner"}
	if _, err := store.CreateTutorial(context.Background(), in, time.Now()); !errors.Is(err, errStoreClosed) {
		t.Errorf("create after Close: %v, want %v", err, errStoreClosed)
	}
}

// pageSized is a tutorial whose content fills about one 4 KiB page, so
// that every write of one adds pages to the WAL.
func pageSized(slug string) TutorialInput {
	return TutorialInput{Title: "T", Slug: slug, Content: strings.Repeat("x", 4000), Category: "backend", Difficulty: "beginner"}
}

func TestWALIsCopiedIntoTheDatabaseInTheBackground(t *testing.T) {
	store, path := openTestStore(t)
	ctx := context.Background()
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	for i := range 20 {
		if _, err := store.CreateTutorial(ctx, pageSized(fmt.Sprintf("t%d", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// No commit checkpoints (wal_autocheckpoint is off), so the file only
	// grows once checkpointWAL has copied the WAL into it.
	for deadline := time.Now().Add(10 * checkpointEvery); size() < before+20*4000; {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is still %d bytes (%d before the writes)", size(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

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

func TestWALIsEmptiedOnceWritesStop(t *testing.T) {
	store, path := openTestStore(t)
	ctx := context.Background()
	for i := range 20 {
		if _, err := store.CreateTutorial(ctx, pageSized(fmt.Sprintf("t%d", i)), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if size, _ := walFile(t, path); size == 0 {
		t.Fatal("the writes left no WAL to empty")
	}
	for deadline := time.Now().Add(10 * checkpointEvery); ; time.Sleep(10 * time.Millisecond) {
		size, _ := walFile(t, path)
		if size == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %d bytes, long after the last write", size)
		}
	}
}

// Under writes that never pause, the WAL must still start over from its
// beginning now and then; otherwise it grows for as long as the writes last.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	store, err := openStore(context.Background(), path, 64) // 256 KiB of WAL
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, stop := context.WithCancel(context.Background())

	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				_, err := store.CreateTutorial(ctx, pageSized(fmt.Sprintf("w%d-%d", w, i)), time.Now())
				if err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// On the way out: stop the writers, then wait for them.
	defer writers.Wait()
	defer stop()

	_, first := walFile(t, path)
	for deadline := time.Now().Add(10 * checkpointEvery); ; time.Sleep(10 * time.Millisecond) {
		size, sequence := walFile(t, path)
		if sequence >= first+2 {
			break // started over twice
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v of steady writes the WAL is %d bytes and started over %d times, want 2", 10*checkpointEvery, size, sequence-first)
		}
	}
}

// Emptying the WAL waits for every reader to leave it. A reader that stays,
// a backup say, must not make writes wait behind that.
func TestEmptyingTheWALDoesNotHoldUpWrites(t *testing.T) {
	store, path := openTestStore(t)
	ctx := context.Background()
	in := TutorialInput{Title: "T", Slug: "first", Category: "backend", Difficulty: "beginner"}
	if _, err := store.CreateTutorial(ctx, in, time.Now()); err != nil {
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
	var n int
	if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	defer reader.ExecContext(ctx, "ROLLBACK")
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM tutorials").Scan(&n); err != nil {
		t.Fatal(err)
	}

	// Two quiet rounds: checkpointWAL copies the WAL, then tries to empty
	// it while the reader is still there.
	time.Sleep(3 * checkpointEvery)
	// The busy timeout is 5 s: a write that waits for the emptying to give
	// up would miss this deadline.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	in.Slug = "second"
	if _, err := store.CreateTutorial(wctx, in, time.Now()); err != nil {
		t.Fatalf("a write while a reader held the WAL: %v", err)
	}
}

// ---- The key cache ----

func TestDataVersionMovesOnlyWhenSomeoneCommits(t *testing.T) {
	store, path := openTestStore(t)
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		v, err := store.DataVersion()
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
	if _, _, err := issueKey(ctx, store, "k", scopeWrite, time.Now()); err != nil {
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

// Callers that read the WAL index header before a commit may record it
// after a caller that read it after the commit. Whatever the order, a
// caller that asks once a commit has returned must get a new version.
func TestDataVersionAfterACommitIsNewWhateverOthersAsk(t *testing.T) {
	store, path := openTestStore(t)
	other, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				store.DataVersion()
			}
		})
	}
	for round := range 1000 {
		before, err := store.DataVersion()
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := issueKey(ctx, other, fmt.Sprintf("key %d", round), scopeRead, time.Now()); err != nil {
			t.Fatal(err)
		}
		after, err := store.DataVersion()
		if err != nil {
			t.Fatal(err)
		}
		if after == before {
			t.Fatalf("round %d: asked after another connection committed, got the version from before the commit (%d)", round, before)
		}
	}
	stop()
	wg.Wait()
}

// A commit under way shows as two copies of the header that differ. That
// is a change, and one that is not remembered: the header from before it
// must not count as unchanged afterwards.
func TestDataVersionCountsAHeaderBeingWrittenAsAChange(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "test.db-shm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	store := &Store{walIndex: f}
	header := func(first, second byte) {
		t.Helper()
		buf := make([]byte, 32<<10) // SQLite's -shm grows in 32 KiB steps
		buf[8], buf[48+8] = first, second
		if _, err := f.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for _, step := range []struct{ first, second byte }{
		{1, 1}, // v1
		{1, 1}, // unchanged: v1
		{1, 2}, // being written, the second copy first: v2
		{1, 1}, // the header from before, but it was not remembered: v3
		{1, 1}, // unchanged: v3
		{2, 2}, // committed: v4
	} {
		header(step.first, step.second)
		v, err := store.DataVersion()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff([]int64{1, 1, 2, 3, 3, 4}, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}
}

// The server needs WAL: a database whose journal mode is something else
// is refused with a reason, not run without.
func TestOpenWALIndexRefusesADatabaseNotInWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rollback.db")
	db, err := sql.Open("sqlite", path) // SQLite's default: a rollback journal
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = openWALIndex(context.Background(), db, path)
	if want := `the database is in journal mode "delete", not WAL, and cannot be switched`; err == nil || err.Error() != want {
		t.Errorf("openWALIndex = %v, want %q", err, want)
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
	key, rec, err := issueKey(context.Background(), ts.store, "cached", scopeRead, ts.clock.now())
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
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{ms[0].sql, "PRAGMA user_version = 1"} {
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

// ---- Prepared statements ----

func TestFirstListsAtOnceDoNotDeadlockThePool(t *testing.T) {
	ts := newTestServer(t)
	// Leave the server one free read connection, then ask sixteen
	// different queries (filters by sorts), none prepared yet, at once.
	// Preparing one while a transaction holds the last connection would
	// wait forever for another.
	for range readConns - 1 {
		conn, err := ts.store.read.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for _, filter := range []string{"", "category=go&", "difficulty=advanced&", "category=go&difficulty=beginner&"} {
		for _, sort := range sortNames {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", ts.url+"/api/v1/tutorials?"+filter+"sort="+sort, nil)
				req.Header.Set("Authorization", "Bearer "+ts.readKey)
				res, err := client.Do(req)
				if err != nil {
					t.Errorf("%s%s: %v", filter, sort, err)
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("%s%s: %d", filter, sort, res.StatusCode)
				}
			})
		}
	}
	wg.Wait()
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

func TestReleaseMemoryLeavesTheStoreWorking(t *testing.T) {
	store, _ := openTestStore(t)
	ctx := context.Background()
	in := TutorialInput{Title: "Go", Slug: "go", Category: "backend", Difficulty: "beginner"}
	want, err := store.CreateTutorial(ctx, in, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ReleaseMemory(ctx); err != nil {
		t.Fatalf("ReleaseMemory: %v", err)
	}
	got, err := store.TutorialBySlug(ctx, "go")
	if err != nil {
		t.Fatalf("read after ReleaseMemory: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("read after ReleaseMemory (-want +got):\n%s", diff)
	}
	in.Slug = "go-2"
	if _, err := store.CreateTutorial(ctx, in, time.Now()); err != nil {
		t.Fatalf("write after ReleaseMemory: %v", err)
	}
}
