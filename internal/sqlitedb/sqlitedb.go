// Package sqlitedb is the machinery of the SQLite engine: everything about
// running SQLite well that says nothing about tutorials. The queries live
// beside the model (sqlite.go in the main package); this package gives them
// a database to run on:
//
//	Open(ctx, path, schema)  open the file, set the pragmas, run the migrations
//	db.QueryRow, db.Query    read, with statements compiled once and reused
//	db.ReadTx(ctx, fn)       several reads from one snapshot
//	db.ScanTx(ctx, fn)       the same, for reads that may take long (see scan.go)
//	db.Write(ctx, fn)        a write, committed in a group with others (see write.go)
//	db.Version(ctx)          a number that moves whenever anyone commits (see version.go)
//	db.WriteFailure()        why writes fail, when the file cannot be written
//	db.Backup(ctx, dest)     a consistent copy while others read and write
//	db.Close()
//
// It holds three pools on one file: one writer connection, a few readers,
// and a smaller pool for the reads that may take long. SQLite allows one
// writer at a time anyway; funnelling every write through one connection
// means writes queue in Go instead of failing with "database is locked",
// and WAL lets the readers carry on while a write commits.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// readConns is the size of the read pool. With a pure-Go driver each query
// keeps a core busy, so a few connections beat many on a small machine.
const readConns = 3

// lockWait is how long a connection waits for a lock that another holds.
const lockWait = 5 * time.Second

// ErrClosed answers a write or a version asked for after Close.
var ErrClosed = errors.New("database is closed")

// DB is one SQLite database file, open for reading and writing.
type DB struct {
	path  string
	write *sql.DB // one connection: see write.go
	read  *sql.DB // readConns connections, each query_only
	scan  *sql.DB // Options.ScanConns connections for ScanTx, query_only too

	stmts     statements // the read pool's
	scanStmts statements // the scan pool's
	writes    writer
	versions  versionReader

	// unwritable is the cause of the last write that failed because the
	// file could not be written (a full disk, a read-only file or
	// directory, an I/O error), until a write succeeds again. Reads carry on
	// in that state, so only this remembers that every write is being lost.
	mu         sync.Mutex
	unwritable error

	// stop ends the background goroutines (the writer, the checkpoints,
	// the version readings); background waits for them.
	stop       chan struct{}
	background sync.WaitGroup
	closeOnce  sync.Once
}

// Options are the settings tests change. The zero value is the program's.
type Options struct {
	// WALLimit is the length of WAL, in frames, past which the writer
	// starts it over under steady writes (see checkpoint.go); 0 for the
	// default.
	WALLimit int
	// CheckpointEvery is how often the WAL is copied into the database
	// file (see checkpoint.go); 0 for the default, negative for never, so
	// that a test can run the rounds itself.
	CheckpointEvery time.Duration
	// WriteQueries are statements compiled on the writer connection at
	// Open, for writes that run them often (see Tx).
	WriteQueries []string
	// ScanConns is the size of the pool of ScanTx (see scan.go); 0 for
	// the default.
	ScanConns int
	// BatchEnd are statements every batch of writes runs last, inside its
	// transaction: upkeep that writes call for and that is cheaper done
	// once for a batch than once for each write. A batch with no write of
	// its own runs them once the database is open, for what was written
	// while this program was not running.
	BatchEnd []string
}

// Open opens (creating if need be) the database at path and brings its
// schema up to date with the numbered migrations of schema (see migrate.go).
func Open(ctx context.Context, path, schema string, opts Options) (*DB, error) {
	// Create the file readable by its owner only before SQLite does, so that
	// the key hashes and the content are not world-readable by default. SQLite
	// gives its -wal and -shm files the same permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	f.Close()

	db := &DB{path: path, stop: make(chan struct{})}
	if err := db.open(ctx, schema, opts); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

func (db *DB) open(ctx context.Context, schema string, opts Options) error {
	// temp_store(memory): each write of a batch runs in a savepoint, and
	// SQLite keeps the pages a savepoint changes, to roll them back, in a
	// sub-journal: a temporary file by default, a pwrite per page. In
	// memory it is a copy, dropped at RELEASE.
	//
	// wal_autocheckpoint(0): the commit that takes the WAL past a thousand
	// pages would otherwise copy them into the database file and fsync it,
	// while every write of the next batch waits. The checkpointer does that
	// work beside the writes instead (checkpoint.go).
	var err error
	db.write, err = sql.Open("sqlite", dsn(db.path, lockWait, "_txlock=immediate&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(0)"))
	if err != nil {
		return err
	}
	db.write.SetMaxOpenConns(1)
	// Keep the connection for the life of the process: opening one costs a
	// parse of the schema and the pragmas of dsn.
	db.write.SetConnMaxIdleTime(0)
	db.write.SetConnMaxLifetime(0)
	if err := requireWAL(ctx, db.write); err != nil {
		return err
	}
	if err := db.migrate(ctx, schema); err != nil {
		return err
	}

	db.read, err = sql.Open("sqlite", dsn(db.path, lockWait, readPragmas))
	if err != nil {
		return err
	}
	// One more than the queries use: versionReader keeps one for good.
	db.read.SetMaxOpenConns(readConns + 1)
	db.read.SetMaxIdleConns(readConns + 1)
	db.read.SetConnMaxIdleTime(0)
	db.read.SetConnMaxLifetime(0)
	db.stmts.pool = db.read

	if err := db.openScans(opts); err != nil {
		return err
	}

	if err := db.versions.start(ctx, db.read); err != nil {
		return err
	}
	db.background.Go(func() { db.versions.run(db.stop) })

	if err := db.writes.start(ctx, db, opts); err != nil {
		return err
	}
	db.background.Go(func() { db.writes.commitBatches(db.stop) })
	if len(opts.BatchEnd) > 0 {
		// In the background: on a large database the upkeep may take a
		// while, and the readers need not wait for it.
		db.background.Go(func() {
			db.Write(context.Background(), func(context.Context, *Tx) error { return nil })
		})
	}
	every := opts.CheckpointEvery
	if every == 0 {
		every = checkpointEvery
	}
	db.background.Go(func() { db.writes.checkpoints(db.stop, every) })
	return nil
}

// readPragmas are the read pools' own settings.
//
// query_only makes a read connection refuse to write, so a slip that sends
// a write to a read pool fails loudly instead of racing the writer.
//
// cache_size(-256): each read connection caches 256 KiB of pages, not
// SQLite's default 2 MB. A read is a lookup or a short range in an index;
// the upper pages that every lookup passes through fit, and the rest come
// from the system's page cache, which all connections share.
const readPragmas = "_pragma=query_only(1)&_pragma=cache_size(-256)"

// dsn builds the data source name for path. The pragmas live in the DSN, not
// in an Exec after Open, because database/sql opens connections whenever it
// likes: only the DSN reaches every one of them.
//
//   - busy_timeout: if another connection or process (tutorials keys revoke,
//     a backup) holds a lock, wait instead of failing at once. It is a
//     parameter, not an extra pragma, because the driver sorts the pragmas
//     and runs busy_timeout first: of two, either might win.
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

// requireWAL checks that the database is in WAL mode. journal_mode(WAL) in
// the DSN does not fail where WAL is impossible (a file system without
// shared memory): SQLite stays in its default mode, where a writer blocks
// every reader. This server is built on readers that never wait, so it
// says so rather than run without.
func requireWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("the database is in journal mode %q, not WAL, and cannot be switched", mode)
	}
	return nil
}

// Close lets the batch being written finish, stops the background work,
// then closes every connection. It may be called more than once.
func (db *DB) Close() error {
	var errs []error
	db.closeOnce.Do(func() {
		close(db.stop)
		db.background.Wait()
		errs = append(errs, db.writes.close(), db.versions.close(), db.stmts.close(), db.scanStmts.close())
		for _, pool := range []*sql.DB{db.read, db.scan} {
			if pool != nil {
				errs = append(errs, pool.Close())
			}
		}
		if db.write != nil {
			errs = append(errs, db.write.Close())
		}
	})
	return errors.Join(errs...)
}

// Ping reports whether the database answers a query.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// WriteFailure returns why the database cannot be written, when the last
// write failed for that reason, or nil.
func (db *DB) WriteFailure() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.unwritable
}

// noteWrite records what the outcome of a write says about the file, and
// returns err as it is. A success clears a failure; a constraint or a
// missing row says nothing either way.
func (db *DB) noteWrite(err error) error {
	if err == nil || isStorageFailure(err) {
		db.mu.Lock()
		db.unwritable = err
		db.mu.Unlock()
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

// IsUniqueViolation reports whether err is SQLite refusing a duplicate in a
// UNIQUE column. It asks the driver for SQLite's extended result code rather
// than reading the message, so a full disk or a bug is never taken for a
// duplicate.
func IsUniqueViolation(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// ReleaseMemory empties the writer's page cache, for a server gone idle.
// The writer keeps SQLite's default cache of 2 MB, the read connections a
// smaller one (see open); the next write reads its pages back from the
// system's page cache.
func (db *DB) ReleaseMemory(ctx context.Context) error {
	_, err := db.write.ExecContext(ctx, "PRAGMA shrink_memory")
	return err
}

// WriterPragma runs "PRAGMA " + pragma on the writer connection, between
// two batches. Some settings belong to one connection only; this is how the
// tests make the file look full (max_page_count) or read-only (query_only)
// to the writer, as SQLite itself would see it, without a full disk or a
// file system that root cannot write.
func (db *DB) WriterPragma(ctx context.Context, pragma string) error {
	_, err := db.write.ExecContext(ctx, "PRAGMA "+pragma)
	return err
}
