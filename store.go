package main

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// This file is the only one that speaks SQL. Every method takes a context so
// that a client that hangs up cancels its query, and shutdown can drain.

// Errors the store returns for the API to turn into statuses. Any other error
// is unexpected: the API logs it and answers 500.
var (
	ErrNotFound  = errors.New("not found")
	ErrSlugTaken = errors.New("slug already exists")
)

//go:embed schema.sql
var schemaSQL string

// timeFormat is how every timestamp is stored and returned: RFC 3339 in UTC
// with whole seconds, "2026-11-24T21:17:33Z". Fixed width, so text order in
// SQLite is time order.
const timeFormat = "2006-01-02T15:04:05Z"

// formatTime renders t the one way the database and the API know.
func formatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(timeFormat)
}

// readConns is the size of the read pool. With a pure-Go driver each query
// keeps a core busy, so a few connections beat many on a small machine.
const readConns = 3

// Store is the SQLite database. It holds two pools on one file: a single
// writer connection and a few readers. SQLite allows one writer at a time
// anyway; funnelling our writes through one connection means they queue in
// Go instead of failing with "database is locked", and WAL lets the readers
// carry on while a write commits.
type Store struct {
	write *sql.DB
	read  *sql.DB
	path  string // for Backup, which needs a connection of its own

	// unwritable is the cause of the last write that failed because the
	// file could not be written (a full disk, a read-only file or
	// directory, an I/O error), until a write succeeds again. Reads carry on
	// in that state, so only this remembers that every write is being lost.
	mu         sync.Mutex
	unwritable error

	// walIndex is SQLite's -shm file, open for as long as the store is:
	// DataVersion reads its header. versionMu guards the header it saw
	// last and the version it gave out for it.
	walIndex    *os.File
	versionMu   sync.Mutex
	lastHeader  walIndexHeader
	knowsHeader bool
	version     int64

	// stmts holds the read queries prepared so far, by their text: see
	// readStmt.
	stmts sync.Map

	// writeStmts are the statements of every batch, prepared on the writer
	// connection before the batches start: see prepareWrites.
	writeStmts map[string]*sql.Stmt

	// walTooLong is checkpointWAL asking commitBatches to checkpoint
	// between two batches, once the WAL is longer than walLimit frames.
	walLimit   int
	walTooLong atomic.Bool

	// writes feeds commitBatches, the one goroutine that runs the writes
	// of tutorials. checkpoint is the connection of checkpointWAL. Closing
	// stop ends both goroutines; background waits for them.
	writes     chan *pendingWrite
	checkpoint *sql.DB
	stop       chan struct{}
	background sync.WaitGroup
	closeOnce  sync.Once
}

// OpenStore opens (creating if need be) the database at path and brings its
// schema up to date.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	return openStore(ctx, path, walResetFrames)
}

// openStore is OpenStore with the length of WAL that checkpointWAL lets
// grow under steady writes, which tests make short.
func openStore(ctx context.Context, path string, walLimit int) (*Store, error) {
	// Create the file readable by its owner only before SQLite does, so that
	// the key hashes and the content are not world-readable by default. SQLite
	// gives its -wal and -shm files the same permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	f.Close()

	// temp_store(memory): each write of a batch runs in a savepoint, and
	// SQLite keeps the pages a savepoint changes, to roll them back, in a
	// sub-journal: a temporary file by default, which cost a pwrite per page
	// and an eighth of a create's time. In memory it is a copy, dropped at
	// RELEASE.
	//
	// wal_autocheckpoint(0): the commit that takes the WAL past a thousand
	// pages would otherwise copy them into the database file and fsync it,
	// tens of milliseconds during which every write of the next batch waits.
	// checkpointWAL does that work beside the writes instead.
	write, err := sql.Open("sqlite", dsn(path, lockWait, "_txlock=immediate&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(0)"))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	write.SetMaxOpenConns(1)
	// Keep the connection for the life of the process: opening one costs a
	// parse of the schema and the pragmas of dsn.
	write.SetConnMaxIdleTime(0)
	write.SetConnMaxLifetime(0)

	s := &Store{write: write, path: path, walLimit: walLimit}
	if err := s.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}

	// query_only makes a read connection refuse to write, so a slip that
	// sends a write to the read pool fails loudly instead of racing the
	// writer.
	//
	// cache_size(-256): each read connection caches 256 KiB of pages, not
	// SQLite's default 2 MB. A read is a lookup or a short range in an
	// index; the upper pages that every lookup passes through fit, and the
	// rest come from the system's page cache, which all the connections
	// share. Four private 2 MB caches took 8 of the 40 MiB a loaded server
	// held, and made no read measurably faster.
	read, err := sql.Open("sqlite", dsn(path, lockWait, "_pragma=query_only(1)&_pragma=cache_size(-256)"))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	read.SetMaxOpenConns(readConns)
	read.SetMaxIdleConns(readConns)
	read.SetConnMaxIdleTime(0)
	read.SetConnMaxLifetime(0)
	s.read = read

	if s.walIndex, err = openWALIndex(ctx, write, path); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}

	if err := s.prepareWrites(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	// busy_timeout(0): checkpointWAL's connection never waits for a lock.
	// Its TRUNCATE holds the write lock while it waits for the readers to
	// leave the WAL; waiting out a long reader (a backup) there would stall
	// every write. It gives up at once instead, and tries again next round.
	s.checkpoint, err = sql.Open("sqlite", dsn(path, 0, ""))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	s.checkpoint.SetMaxOpenConns(1)

	s.writes = make(chan *pendingWrite)
	s.stop = make(chan struct{})
	s.background.Go(s.commitBatches)
	s.background.Go(s.checkpointWAL)
	return s, nil
}

// lockWait is how long a connection waits for a lock that another holds.
const lockWait = 5 * time.Second

// dsn builds the data source name for path. The pragmas live in the DSN, not
// in an Exec after Open, because database/sql opens connections whenever it
// likes: only the DSN reaches every one of them.
//
//   - busy_timeout: if another connection or process (tutorials keys revoke,
//     a backup) holds a lock, wait up to busyTimeout (lockWait, for all but
//     one) instead of failing at once. It is a parameter, not an extra
//     pragma, because the driver sorts the pragmas and runs busy_timeout
//     first: of two, either might win.
//   - journal_mode(WAL): readers never block the writer, nor it them.
//   - synchronous(FULL): each commit is fsynced before it returns, so a 2xx
//     on a write survives power loss, not only a crash of the process.
//   - foreign_keys(1): off by default in SQLite, for historical reasons.
func dsn(path string, busyTimeout time.Duration, extra string) string {
	u := url.URL{Scheme: "file", Opaque: path}
	q := fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)"
	if extra != "" {
		q += "&" + extra
	}
	u.RawQuery = q
	return u.String()
}

// Close lets the batch being written finish, stops the background
// checkpoints, then closes every connection.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
			s.background.Wait()
		}
	})
	var errs []error
	if s.checkpoint != nil {
		errs = append(errs, s.checkpoint.Close())
	}
	s.stmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	for _, st := range s.writeStmts {
		errs = append(errs, st.Close())
	}
	errs = append(errs, s.read.Close(), s.write.Close())
	// Only after every connection: closing a file drops all of this
	// process's POSIX locks on it, SQLite's too (see openWALIndex).
	if s.walIndex != nil {
		errs = append(errs, s.walIndex.Close())
	}
	return errors.Join(errs...)
}

// readStmt returns query prepared on the read pool, preparing it the first
// time it is asked for. SQLite compiles every statement before running it,
// and for a lookup by key the compiling costs more than the running: it was
// a fifth of a GET's time. database/sql keeps one compiled copy per
// connection of the pool, made the first time the connection runs it. Only
// query texts built from fixed pieces come here (the list's are a few dozen
// combinations of filters and sorts), so the map stays small.
func (s *Store) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close() // another request prepared it meanwhile
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// walIndexHeader is the header of SQLite's WAL index: the first 48 bytes
// of the -shm file beside the database, and a second copy of them right
// after (https://sqlite.org/walformat.html, "The WAL-Index Header"). Every
// commit rewrites it: it holds the number of frames in the WAL (a commit
// adds at least one), the WAL's salts (new each time the WAL starts over)
// and a checksum of the rest. So the header changes with every commit and
// never comes back to a value it had: when it is the same as before,
// nobody has committed in between. (It also changes, with no commit, when
// the WAL starts over, as when checkpointWAL empties it after the writes
// stop. That only costs the caches one refill.)
//
// This is the test SQLite itself makes at the start of every read, to know
// whether its page cache still holds, and that PRAGMA data_version reports.
// Reading the bytes directly skips the statement, the read transaction and
// the system calls of the locks around it: one pread of 96 bytes, where the
// PRAGMA took about 5 µs (BENCHMARKS.md).
type walIndexHeader [48]byte

// openWALIndex opens the -shm file of the database at path, which db has
// open in WAL mode.
//
// The file stays open until the store closes, after its connections: POSIX
// drops every lock a process holds on a file as soon as the process closes
// any descriptor of that file, and SQLite keeps locks on this one (they
// tell other processes that the index is in use). For the same reason a
// process opens one Store per database: closing a second would drop the
// first one's locks. The commands do; only tests open two, with no third
// process about.
func openWALIndex(ctx context.Context, db *sql.DB, path string) (*os.File, error) {
	// journal_mode(WAL) in the DSN does not fail where WAL is impossible
	// (a file system without shared memory): SQLite stays in its default
	// mode. This server needs WAL, for readers that never wait for the
	// writer and for the index read here, so it says so rather than run
	// without.
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return nil, err
	}
	if mode != "wal" {
		return nil, fmt.Errorf("the database is in journal mode %q, not WAL, and cannot be switched", mode)
	}
	return os.Open(path + "-shm")
}

// DataVersion is a number that changes whenever anyone, this process or
// another, has committed a change to the database since it was last asked;
// it stays the same otherwise (but for the WAL starting over: see
// walIndexHeader). So a cache of something in the database may be trusted
// for as long as DataVersion stays the same. Every authenticated request
// asks (see keyCache in auth.go).
//
// It reads the WAL index header (see walIndexHeader) and gives out a new
// number whenever the header differs from the one it last saw. Writers
// update the second copy of the header first and the first copy last, so
// while a commit is under way the two copies differ: that counts as a
// change too, and the header is not remembered, so the caller after sees
// a change again.
//
// The file is read outside the lock, so a caller that read the header
// before a commit may take the lock after one that read it after. It then
// records the older header, under a new number; the next caller sees the
// newer one and moves the number again. Out of order, the number moves
// more often than needed, never less: a caller that read a header other
// than the one kept always gets a number no one has had.
func (s *Store) DataVersion() (int64, error) {
	var buf [2 * len(walIndexHeader{})]byte
	if _, err := s.walIndex.ReadAt(buf[:], 0); err != nil {
		return 0, fmt.Errorf("read the WAL index: %w", err)
	}
	half := len(buf) / 2
	first, second := walIndexHeader(buf[:half]), walIndexHeader(buf[half:])
	s.versionMu.Lock()
	defer s.versionMu.Unlock()
	switch {
	case first != second:
		s.knowsHeader = false
		s.version++
	case !s.knowsHeader || first != s.lastHeader:
		s.lastHeader, s.knowsHeader = first, true
		s.version++
	}
	return s.version, nil
}

// WriteFailure returns why the database cannot be written, when the last
// write failed for that reason, or nil.
func (s *Store) WriteFailure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unwritable
}

// noteWrite records what the outcome of a write says about the file, and
// returns err as it is. A success clears a failure; a constraint or a
// missing row says nothing either way.
func (s *Store) noteWrite(err error) error {
	if err == nil || isStorageFailure(err) {
		s.mu.Lock()
		s.unwritable = err
		s.mu.Unlock()
	}
	return err
}

// isStorageFailure reports whether err is SQLite unable to write the file,
// by its primary result code, as opposed to a problem with the statement.
func isStorageFailure(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_PERM, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// Ping reports whether the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// migrationHeader matches the line that starts each migration in schema.sql.
var migrationHeader = regexp.MustCompile(`(?m)^-- migration (\d+):.*$`)

// migration is one numbered step of schema.sql.
type migration struct {
	version int
	sql     string
}

// migrations splits schema.sql into its numbered steps, in order.
func migrations() ([]migration, error) {
	locs := migrationHeader.FindAllStringSubmatchIndex(schemaSQL, -1)
	var ms []migration
	for i, loc := range locs {
		version, _ := strconv.Atoi(schemaSQL[loc[2]:loc[3]])
		if version != i+1 {
			return nil, fmt.Errorf("schema.sql: migration %d follows migration %d", version, i)
		}
		end := len(schemaSQL)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		ms = append(ms, migration{version: version, sql: schemaSQL[loc[1]:end]})
	}
	return ms, nil
}

// migrate runs the migrations the database has not had yet, each in its own
// transaction together with the user_version that records it: a migration
// either happens completely or not at all.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var current int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program (%d): upgrade tutorials", current, len(ms))
	}
	for _, m := range ms[current:] {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			// PRAGMA takes no parameters; the version is our own integer.
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", m.version, err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction and commits it if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op once committed
	if err := fn(tx); err != nil {
		return s.noteWrite(err)
	}
	return s.noteWrite(tx.Commit())
}

// ---- Group commit ----

// With synchronous=FULL every commit waits for an fsync, a millisecond or
// more on most disks and far more on an SD card: one commit per request
// would cap writes at about a thousand a second, whatever the CPU. So the
// writes of tutorials that arrive while a commit is under way wait for it
// and then go together, in one transaction with one fsync. Each still
// answers only once its own transaction is on disk, and each runs inside a
// SAVEPOINT of its own, so that one that fails (a slug taken) is undone
// alone and the others of its batch commit.

// maxBatch bounds a batch, so that the first write of a long queue does not
// wait for the last.
const maxBatch = 128

// errStoreClosed answers a write that arrives after Close.
var errStoreClosed = errors.New("store is closed")

// pendingWrite is a write waiting for its batch. fn runs in the batch's
// transaction, with the context it is given.
type pendingWrite struct {
	ctx  context.Context // the request's: a write whose client is gone is skipped
	fn   func(ctx context.Context, tx *sql.Tx) error
	done chan error // fn's result, or the batch's, once it is on disk
}

// inBatch runs fn in the next batch and returns once that batch has
// committed: nil only if fn succeeded and its batch is on disk.
func (s *Store) inBatch(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	p := &pendingWrite{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.writes <- p:
	case <-s.stop:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-p.done
}

// commitBatches takes the writes as they come: the first that arrives, and
// with it every other already waiting, up to maxBatch. There is no timer:
// alone, a write commits at once; under load, the batch is whatever
// gathered while the last one was being written.
func (s *Store) commitBatches() {
	for {
		var batch []*pendingWrite
		select {
		case p := <-s.writes:
			batch = append(batch, p)
		case <-s.stop:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case p := <-s.writes:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		s.commitBatch(batch)
		if s.walTooLong.Swap(false) {
			// See checkpointWAL. An error leaves the WAL as long as it
			// was, and the next round asks again.
			s.write.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// checkpointEvery is how often checkpointWAL copies the WAL into the
// database file.
const checkpointEvery = time.Second

// walResetFrames is the length of the WAL, in frames (pages), past which
// checkpointWAL has the writer start it over (Store.walLimit): 16,384
// frames, 64 MiB at SQLite's default page size of 4 KiB.
const walResetFrames = 16384

// checkpointWAL copies what the WAL holds into the database file, on a
// connection of its own, so that no commit ever waits for that work (see
// wal_autocheckpoint in OpenStore). PASSIVE waits for no reader and no
// writer: what it cannot copy now, because a reader still needs it, the
// next round copies. A round that fails leaves the same work to the next
// one, so its error needs no other handling; and SQLite checkpoints all of
// the WAL anyway when the last connection closes.
//
// Copying is not enough under a steady stream of writes. SQLite starts the
// WAL over from its beginning only when a write begins after a checkpoint
// has copied every frame, and with a batch always being written that never
// happens: measured, the WAL grew by 90 MB a second under the bench's
// creates, to 900 MB in ten seconds, and the file stayed that size after
// the load. So a round that finds the WAL longer than walLimit copies
// once more (what came during the first copy) and asks commitBatches to
// checkpoint between two batches, when no write is under way. That last
// copy is short (3 to 50 ms measured), and the next batch starts the WAL
// over. (A RESTART checkpoint could do it from here, but it needs the write
// lock, which under such load it only gets by waiting for it, and then it
// waits for the readers too, holding every write up meanwhile.)
//
// A round that finds nothing written since the last one and everything
// copied empties the WAL file (TRUNCATE), so that an idle server's disk
// holds the database file alone, as large as the data.
func (s *Store) checkpointWAL() {
	ticker := time.NewTicker(checkpointEvery)
	defer ticker.Stop()
	lastFrames := 0
	for {
		select {
		case <-s.stop:
			return
		case <-ticker.C:
		}
		var busy, frames, copied int
		err := s.checkpoint.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
		switch {
		case err != nil:
		case frames > 0 && frames == copied && frames == lastFrames:
			s.checkpoint.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		case frames > s.walLimit:
			s.checkpoint.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			s.walTooLong.Store(true)
		}
		lastFrames = frames
	}
}

// ReleaseMemory empties the writer's page cache, to be called when the
// server has gone idle: see idleWatch in main.go. The writer keeps SQLite's
// default cache of 2 MB, the read connections a smaller one (see
// OpenStore). The next write reads its pages back from the system's page
// cache.
func (s *Store) ReleaseMemory(ctx context.Context) error {
	_, err := s.write.ExecContext(ctx, "PRAGMA shrink_memory")
	return err
}

// commitBatch writes a batch in one transaction and tells each write how it
// went.
//
// The statements run on a context that is never cancelled. A cancelled
// context makes the driver interrupt SQLite, and an interrupted write rolls
// back the whole transaction: one client hanging up would undo the writes
// of all the others. A write whose client is gone before its turn is
// skipped instead.
func (s *Store) commitBatch(batch []*pendingWrite) {
	ctx := context.Background()
	results := make([]error, len(batch))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i, p := range batch {
			if err := p.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			var err error
			if results[i], err = s.inSavepoint(ctx, tx, p.fn); err != nil {
				return err // the transaction is in doubt: fail the batch
			}

		}
		return nil
	})
	// What the batch says about the file: its own failure (BEGIN too, which
	// inTx does not note), or else a write that failed alone because the
	// file cannot be written (the disk is full), noted after the commit,
	// whose success would otherwise clear it.
	if err != nil {
		s.noteWrite(err)
	}
	for _, r := range results {
		if err == nil && r != nil {
			s.noteWrite(r)
		}
	}
	for i, p := range batch {
		if err != nil {
			p.done <- err
		} else {
			p.done <- results[i]
		}
	}
}

// The statements that every batch runs, and the insert of a tutorial.
const (
	savepointSQL  = "SAVEPOINT write"
	rollbackToSQL = "ROLLBACK TO write"
	releaseSQL    = "RELEASE write"
	insertSQL     = `INSERT INTO tutorials
		(title, slug, excerpt, content, category, difficulty, estimated_time,
		 published_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING ` + tutorialColumns + `, content`
)

// prepareWrites compiles the statements of writeStmts on the writer
// connection once, as readStmt does for reads: compiling them was a sixth
// of a create's time. It must run before the batches start: a batch holds
// the only writer connection, so nothing could be prepared on it then.
func (s *Store) prepareWrites(ctx context.Context) error {
	s.writeStmts = make(map[string]*sql.Stmt)
	for _, q := range []string{savepointSQL, rollbackToSQL, releaseSQL, insertSQL} {
		st, err := s.write.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		s.writeStmts[q] = st
	}
	return nil
}

// execIn runs one of writeStmts in tx.
func (s *Store) execIn(ctx context.Context, tx *sql.Tx, query string) error {
	_, err := tx.StmtContext(ctx, s.writeStmts[query]).ExecContext(ctx)
	return err
}

// inSavepoint runs fn inside a savepoint of tx, rolled back if fn fails.
// It returns fn's error, and apart from it any error of the savepoint's own
// statements, after which tx cannot be trusted.
func (s *Store) inSavepoint(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) (fnErr, err error) {
	if err := s.execIn(ctx, tx, savepointSQL); err != nil {
		return nil, err
	}
	if fnErr = fn(ctx, tx); fnErr != nil {
		if err := s.execIn(ctx, tx, rollbackToSQL); err != nil {
			return nil, err
		}
	}
	return fnErr, s.execIn(ctx, tx, releaseSQL)
}

// isUniqueViolation reports whether err is SQLite refusing a duplicate in a
// UNIQUE column. It asks the driver for SQLite's extended result code rather
// than reading the message, so a full disk or a bug is never taken for a
// duplicate.
func isUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// ---- Tutorials ----

// Tutorial is one row of the tutorials table, as the API returns it.
type Tutorial struct {
	TutorialSummary
	Content string `json:"content"`
}

// TutorialSummary is a tutorial without its content, as the list returns it:
// a page of twenty should not carry twenty articles.
type TutorialSummary struct {
	ID            int64     `json:"id"`
	Title         string    `json:"title"`
	Slug          string    `json:"slug"`
	Excerpt       string    `json:"excerpt"`
	Category      string    `json:"category"`
	Difficulty    string    `json:"difficulty"`
	EstimatedTime *int64    `json:"estimated_time"`
	PublishedAt   time.Time `json:"published_at"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// TutorialInput is what a client writes: every field it may set, already
// validated. Create and Replace write all of them; Patch writes only those
// named in Sent.
type TutorialInput struct {
	Title         string
	Slug          string
	Excerpt       string
	Content       string
	Category      string
	Difficulty    string
	EstimatedTime *int64     // nil: no estimate
	PublishedAt   *time.Time // nil: the default (the time of creation)

	// Sent holds the JSON names of the fields the client sent.
	Sent map[string]bool
}

// tutorialColumns is the column list every query returns a tutorial with, in
// the order scanTutorial reads it.
const tutorialColumns = `id, title, slug, excerpt, category, difficulty, estimated_time,
	published_at, created_at, updated_at`

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// scanTutorial reads tutorialColumns, plus content when content is non-nil.
func scanTutorial(row scanner, content *string) (TutorialSummary, error) {
	var t TutorialSummary
	var published, created, updated string
	dest := []any{&t.ID, &t.Title, &t.Slug, &t.Excerpt, &t.Category, &t.Difficulty,
		&t.EstimatedTime, &published, &created, &updated}
	if content != nil {
		dest = append(dest, content)
	}
	if err := row.Scan(dest...); err != nil {
		return t, err
	}
	var err error
	if t.PublishedAt, err = time.Parse(timeFormat, published); err != nil {
		return t, err
	}
	if t.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
		return t, err
	}
	if t.UpdatedAt, err = time.Parse(timeFormat, updated); err != nil {
		return t, err
	}
	return t, nil
}

// scanFullTutorial reads one whole tutorial, turning "no row" into ErrNotFound.
func scanFullTutorial(row scanner) (Tutorial, error) {
	var t Tutorial
	var err error
	t.TutorialSummary, err = scanTutorial(row, &t.Content)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// tutorialBySlugSQL reads one whole tutorial; TutorialBySlug and the
// If-Match check inside a write both use it.
const tutorialBySlugSQL = `SELECT ` + tutorialColumns + `, content FROM tutorials WHERE slug = ?`

// TutorialBySlug returns the tutorial with that slug, or ErrNotFound.
func (s *Store) TutorialBySlug(ctx context.Context, slug string) (Tutorial, error) {
	st, err := s.readStmt(ctx, tutorialBySlugSQL)
	if err != nil {
		return Tutorial{}, err
	}
	return scanFullTutorial(st.QueryRowContext(ctx, slug))
}

// ListParams selects and orders a page of tutorials. The API has already
// checked every value.
type ListParams struct {
	Page       int64  // from 1
	PerPage    int64  // 1 to 100
	Category   string // "" for any
	Difficulty string // "" for any
	Query      string // words to search for, as the user typed them; "" for no search
	Sort       string // a key of sortOrders, or "" for the default order
}

// sortOrders maps each sort the API accepts to its ORDER BY. Every order ends
// in id DESC, so that it is total: rows that tie on the sort key keep one
// order from page to page, and paging never repeats or skips one.
var sortOrders = map[string]string{
	"-published_at": "published_at DESC, id DESC",
	"published_at":  "published_at ASC, id DESC",
	"title":         "title ASC, id DESC",
	"-title":        "title DESC, id DESC",
}

// relevanceOrder is the default order of a search: best match first (bm25
// scores lower for better matches), then id DESC, so that it is total too.
const relevanceOrder = "hits.score ASC, id DESC"

// searchHits is the FTS5 query a search joins tutorials with: the rowids
// that match, with their score. The weights of bm25 follow the columns
// (title, excerpt, content): a word in the title counts ten times one in
// the content, one in the excerpt five times. Only rowid and score come out
// of it, so the tutorials columns keep their plain names in the rest of the
// query.
const searchHits = `(SELECT rowid, bm25(tutorials_fts, 10.0, 5.0, 1.0) AS score
	FROM tutorials_fts WHERE tutorials_fts MATCH ?) AS hits`

// ListTutorials returns one page of tutorials and the number of tutorials
// that match in all. Both come from one read transaction, so the total is
// true of the page even while writers carry on.
func (s *Store) ListTutorials(ctx context.Context, p ListParams) ([]TutorialSummary, int64, error) {
	sort := p.Sort
	if sort == "" {
		sort = "-published_at"
	}
	order, ok := sortOrders[sort]
	if !ok {
		return nil, 0, fmt.Errorf("list tutorials: unknown sort %q", p.Sort)
	}
	// The query is built from fixed pieces; user values only ever travel as
	// parameters.
	from := "tutorials"
	var where []string
	var args []any
	if p.Query != "" {
		match := ftsQuery(p.Query)
		if match == "" {
			// Not the text itself: what people search for stays out of logs.
			return nil, 0, errors.New("list tutorials: no words to search for")
		}
		from = "tutorials JOIN " + searchHits + " ON hits.rowid = tutorials.id"
		args = append(args, match)
		if p.Sort == "" {
			order = relevanceOrder
		}
	}
	if p.Category != "" {
		where = append(where, "category = ?")
		args = append(args, p.Category)
	}
	if p.Difficulty != "" {
		where = append(where, "difficulty = ?")
		args = append(args, p.Difficulty)
	}
	filter := ""
	if len(where) > 0 {
		filter = " WHERE " + strings.Join(where, " AND ")
	}

	// A page so far out that its offset would overflow is past the end of
	// any table: ask for the largest offset SQLite takes instead.
	offset := int64(math.MaxInt64)
	if p.Page-1 <= math.MaxInt64/p.PerPage {
		offset = (p.Page - 1) * p.PerPage
	}

	// Prepared before the transaction begins: preparing takes a connection
	// of the pool, and a transaction holding one while it waits for another
	// could wait forever once every connection is held that way.
	// Without a search the total comes from tutorial_counts (see
	// schema.sql), whose columns have the names of the filter's, not from a
	// COUNT(*) that would read every matching row. The matches of a search
	// can only be counted.
	countQuery := "SELECT COALESCE(SUM(n), 0) FROM tutorial_counts" + filter
	if p.Query != "" {
		countQuery = "SELECT COUNT(*) FROM " + from + filter
	}
	countStmt, err := s.readStmt(ctx, countQuery)
	if err != nil {
		return nil, 0, err
	}
	pageStmt, err := s.readStmt(ctx, "SELECT "+tutorialColumns+" FROM "+from+filter+" ORDER BY "+order+" LIMIT ? OFFSET ?")
	if err != nil {
		return nil, 0, err
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()

	var total int64
	if err := tx.StmtContext(ctx, countStmt).QueryRowContext(ctx, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := tx.StmtContext(ctx, pageStmt).QueryContext(ctx, append(args, p.PerPage, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	list := []TutorialSummary{} // [] in JSON, never null
	for rows.Next() {
		t, err := scanTutorial(rows, nil)
		if err != nil {
			return nil, 0, err
		}
		list = append(list, t)
	}
	return list, total, rows.Err()
}

// ftsQuery turns text a person typed into an FTS5 query that finds the
// tutorials holding all of its words, the last one as a prefix ("flas" finds
// Flask, as the user is likely still typing it). It returns "" when the text
// has no word to search for.
//
// FTS5 has a query language of its own (AND, OR, NOT, NEAR, "phrases",
// prefix*, column:filters, parentheses), and text passed to MATCH as it is
// would be parsed in it: an unbalanced quote or a stray "-" is a syntax
// error. So each word goes in double quotes, with a quote inside doubled:
// FTS5 then reads it as a plain phrase, and its tokenizer splits it the same
// way it split the tutorials ("c++" searches for c, "don't" for the phrase
// don t).
func ftsQuery(text string) string {
	words := searchWords(text)
	for i, w := range words {
		words[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	if len(words) == 0 {
		return ""
	}
	return strings.Join(words, " ") + "*"
}

// searchWords splits text on spaces into the words worth searching for:
// those with at least one letter or digit. The rest ("-", "*", an emoji)
// are all separators to the tokenizer and could only ever match nothing.
// Invalid UTF-8 and control characters become spaces: FTS5's query parser
// stops at a NUL byte, leaving a quote open.
func searchWords(text string) []string {
	text = strings.ToValidUTF8(text, " ")
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	var words []string
	for _, w := range strings.Fields(text) {
		if strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) {
			words = append(words, w)
		}
	}
	return words
}

// CreateTutorial inserts a tutorial and returns it as stored. A slug that is
// taken is ErrSlugTaken.
func (s *Store) CreateTutorial(ctx context.Context, in TutorialInput, now time.Time) (Tutorial, error) {
	var t Tutorial
	err := s.inBatch(ctx, s.insertTutorial(in, now, &t))
	if isUniqueViolation(err) {
		return t, ErrSlugTaken
	}
	return t, err
}

// Precondition decides whether a write may go ahead, given the tutorial as
// it is stored at that moment: current is nil when there is none. An error
// it returns stops the write and is returned as it is. It is how If-Match
// reaches the store without the store knowing about HTTP.
type Precondition func(current *Tutorial) error

// checkPrecondition applies check, if there is one, to the tutorial with
// slug as tx sees it. Because tx is a write transaction (BEGIN IMMEDIATE,
// on the one writer connection), nobody can change the tutorial between
// this read and the write that follows it in tx: the check and the write
// are one atomic step.
func checkPrecondition(ctx context.Context, tx *sql.Tx, slug string, check Precondition) error {
	if check == nil {
		return nil
	}
	current, err := scanFullTutorial(tx.QueryRowContext(ctx, tutorialBySlugSQL, slug))
	if errors.Is(err, ErrNotFound) {
		if err := check(nil); err != nil {
			return err
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return check(&current)
}

// updateTutorial runs an UPDATE ... RETURNING of one tutorial after its
// precondition, in one write transaction.
func (s *Store) updateTutorial(ctx context.Context, slug string, check Precondition, q string, args ...any) (Tutorial, error) {
	var t Tutorial
	err := s.inBatch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := checkPrecondition(ctx, tx, slug, check); err != nil {
			return err
		}
		var err error
		t, err = scanFullTutorial(tx.QueryRowContext(ctx, q, args...))
		return err
	})
	if isUniqueViolation(err) {
		return t, ErrSlugTaken
	}
	return t, err
}

// insertTutorial is the write of CreateTutorial, for a batch: it inserts in
// and stores the row as written in t.
func (s *Store) insertTutorial(in TutorialInput, now time.Time, t *Tutorial) func(context.Context, *sql.Tx) error {
	published := now
	if in.PublishedAt != nil {
		published = *in.PublishedAt
	}
	return func(ctx context.Context, tx *sql.Tx) error {
		var err error
		*t, err = scanFullTutorial(tx.StmtContext(ctx, s.writeStmts[insertSQL]).QueryRowContext(ctx, in.Title, in.Slug, in.Excerpt, in.Content,
			in.Category, in.Difficulty, in.EstimatedTime,
			formatTime(published), formatTime(now), formatTime(now)))
		return err
	}
}

// PatchTutorial changes the fields named in in.Sent, and only those, in one
// UPDATE, if check (nil for none) allows it. The statement is fixed: each
// column is set to itself unless its flag says the client sent it. So two
// clients that patch different fields at once cannot undo each other, as
// they could with read-modify-write.
func (s *Store) PatchTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check Precondition) (Tutorial, error) {
	const q = `UPDATE tutorials SET
		title          = CASE WHEN :set_title          THEN :title          ELSE title          END,
		slug           = CASE WHEN :set_slug           THEN :slug           ELSE slug           END,
		excerpt        = CASE WHEN :set_excerpt        THEN :excerpt        ELSE excerpt        END,
		content        = CASE WHEN :set_content        THEN :content        ELSE content        END,
		category       = CASE WHEN :set_category       THEN :category       ELSE category       END,
		difficulty     = CASE WHEN :set_difficulty     THEN :difficulty     ELSE difficulty     END,
		estimated_time = CASE WHEN :set_estimated_time THEN :estimated_time ELSE estimated_time END,
		published_at   = CASE WHEN :set_published_at   THEN :published_at   ELSE published_at   END,
		updated_at     = MAX(:now, updated_at)
		WHERE slug = :where_slug
		RETURNING ` + tutorialColumns + `, content`
	var published any
	if in.PublishedAt != nil {
		published = formatTime(*in.PublishedAt)
	}
	return s.updateTutorial(ctx, slug, check, q,
		sql.Named("set_title", in.Sent["title"]), sql.Named("title", in.Title),
		sql.Named("set_slug", in.Sent["slug"]), sql.Named("slug", in.Slug),
		sql.Named("set_excerpt", in.Sent["excerpt"]), sql.Named("excerpt", in.Excerpt),
		sql.Named("set_content", in.Sent["content"]), sql.Named("content", in.Content),
		sql.Named("set_category", in.Sent["category"]), sql.Named("category", in.Category),
		sql.Named("set_difficulty", in.Sent["difficulty"]), sql.Named("difficulty", in.Difficulty),
		sql.Named("set_estimated_time", in.Sent["estimated_time"]), sql.Named("estimated_time", in.EstimatedTime),
		sql.Named("set_published_at", in.Sent["published_at"]), sql.Named("published_at", published),
		sql.Named("now", formatTime(now)),
		sql.Named("where_slug", slug))
}

// ReplaceTutorial overwrites every writable field of the tutorial with that
// slug, if check (nil for none) allows it. A published_at left out goes back
// to its default, the time the tutorial was created. It never creates: a
// missing slug is ErrNotFound.
func (s *Store) ReplaceTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check Precondition) (Tutorial, error) {
	const q = `UPDATE tutorials SET
		title = ?, slug = ?, excerpt = ?, content = ?, category = ?, difficulty = ?,
		estimated_time = ?,
		published_at = COALESCE(?, created_at),
		updated_at = MAX(?, updated_at)
		WHERE slug = ?
		RETURNING ` + tutorialColumns + `, content`
	var published any
	if in.PublishedAt != nil {
		published = formatTime(*in.PublishedAt)
	}
	return s.updateTutorial(ctx, slug, check, q, in.Title, in.Slug, in.Excerpt, in.Content,
		in.Category, in.Difficulty, in.EstimatedTime, published, formatTime(now), slug)
}

// DeleteTutorial deletes the tutorial with that slug if check (nil for none)
// allows it, or returns ErrNotFound.
func (s *Store) DeleteTutorial(ctx context.Context, slug string, check Precondition) error {
	return s.inBatch(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := checkPrecondition(ctx, tx, slug, check); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM tutorials WHERE slug = ?`, slug)
		if err != nil {
			return err
		}
		return requireOneRow(res)
	})
}

// requireOneRow turns an UPDATE or DELETE that matched nothing into
// ErrNotFound.
func requireOneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// ---- API keys ----

// APIKey is a key's record. The key itself is not in it: only its hash is
// stored, and the hash stays inside the store.
type APIKey struct {
	ID         int64
	Name       string
	Prefix     string // the key's first characters, to tell keys apart
	Scope      string // scopeRead or scopeWrite
	Active     bool
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
}

// CreateKey records a new key by its hash and prefix.
func (s *Store) CreateKey(ctx context.Context, name, scope, prefix string, hash []byte, now time.Time) (APIKey, error) {
	const q = `INSERT INTO api_keys (name, prefix, hash, scope, created_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`
	k := APIKey{Name: name, Prefix: prefix, Scope: scope, Active: true, CreatedAt: now.UTC().Truncate(time.Second)}
	err := s.write.QueryRowContext(ctx, q, name, prefix, hash, scope, formatTime(now)).Scan(&k.ID)
	return k, err
}

// apiKeyColumns is the column list scanAPIKey reads.
const apiKeyColumns = `id, name, prefix, scope, active, created_at, COALESCE(last_used_at, '')`

func scanAPIKey(row scanner) (APIKey, error) {
	var k APIKey
	var created, lastUsed string
	if err := row.Scan(&k.ID, &k.Name, &k.Prefix, &k.Scope, &k.Active, &created, &lastUsed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return k, ErrNotFound
		}
		return k, err
	}
	var err error
	if k.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
		return k, err
	}
	if lastUsed != "" {
		if k.LastUsedAt, err = time.Parse(timeFormat, lastUsed); err != nil {
			return k, err
		}
	}
	return k, nil
}

// KeyByHash returns the key whose SHA-256 is hash, active or not, or
// ErrNotFound.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	const q = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE hash = ?`
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return APIKey{}, err
	}
	return scanAPIKey(st.QueryRowContext(ctx, hash))
}

// APIKeys returns every key, revoked ones included, oldest first.
func (s *Store) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// HasActiveKey reports whether any key can still be used.
func (s *Store) HasActiveKey(ctx context.Context) (bool, error) {
	var ok bool
	err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE active = 1)`).Scan(&ok)
	return ok, err
}

// RevokeKey deactivates the key with that id, or returns ErrNotFound. The key
// row stays, so that the listing still explains where a key went.
func (s *Store) RevokeKey(ctx context.Context, id int64) error {
	res, err := s.write.ExecContext(ctx, `UPDATE api_keys SET active = 0 WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return requireOneRow(res)
}

// SaveLastUsed records when each key in used was last seen, in one
// transaction. A time never moves backwards, in case another process saw
// the key later.
func (s *Store) SaveLastUsed(ctx context.Context, used map[int64]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		const q = `UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, ''), ?) WHERE id = ?`
		for id, t := range used {
			if _, err := tx.ExecContext(ctx, q, formatTime(t), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// ---- Backups ----

// ErrBackupExists is a backup that would overwrite a file the caller did not
// say it may replace.
var ErrBackupExists = errors.New("backup file already exists")

// Backup writes a consistent copy of the database to dest, while the server
// may be reading and writing it. With replace false it refuses a dest that
// exists; with replace true it swaps an old dest for the new copy in one
// step. Either way dest is never a half-written copy: the copy is made in a
// temporary file beside it, checked, synced and only then renamed to dest.
func (s *Store) Backup(ctx context.Context, dest string, replace bool) (err error) {
	if fi, statErr := os.Stat(dest); statErr == nil {
		if src, srcErr := os.Stat(s.path); srcErr == nil && os.SameFile(fi, src) {
			return fmt.Errorf("%s is the database itself", dest)
		}
	}
	if !replace {
		// Claim the name with O_EXCL, which fails if it exists, so that two
		// backups started at once cannot both take it, and the check is not
		// a step ahead of the write. The empty file is replaced by the rename
		// below, or removed if the backup fails.
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return ErrBackupExists
		} else if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		f.Close()
		defer func() {
			if err != nil {
				os.Remove(dest)
			}
		}()
	}

	// The temporary file is in dest's directory because rename is only
	// atomic within one file system. os.CreateTemp makes it empty and
	// readable by its owner only, as the database is; VACUUM INTO accepts
	// an empty file.
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()

	if err := s.vacuumInto(ctx, tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := checkIntegrity(ctx, tmpName); err != nil {
		return fmt.Errorf("backup: the copy is damaged: %w", err)
	}
	if err := syncFile(tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmpName, dest); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The rename is only durable once the directory that records it is.
	if err := syncFile(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// vacuumInto copies the database to the empty file path with VACUUM INTO,
// which reads one snapshot (so the copy is consistent, as of the moment it
// began) and writes a compact database without the WAL.
//
// It runs on a connection of its own. Not the read pool: query_only refuses
// VACUUM INTO, as it writes a file. Not the writer: the one write connection
// would be taken for the whole copy, and every create and update would
// queue behind it. With WAL, a reader of its own lets the writer carry on.
func (s *Store) vacuumInto(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", dsn(s.path, lockWait, ""))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", path)
	return err
}

// checkIntegrity opens the database file at path read-only and runs
// PRAGMA integrity_check, which reads every page and answers one row, "ok",
// or a row per problem.
func checkIntegrity(ctx context.Context, path string) error {
	u := url.URL{Scheme: "file", Opaque: path, RawQuery: "mode=ro"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// syncFile flushes the file or directory at path to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
