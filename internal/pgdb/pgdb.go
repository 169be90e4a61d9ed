// Package pgdb is the machinery of the PostgreSQL engine: everything about
// running on PostgreSQL that says nothing about tutorials. The queries live
// beside the model (postgres.go in the main package); this package gives
// them a database to run on:
//
//	Open(ctx, url, schema)  connect, and run the migrations under a lock
//	db.QueryRow, db.Query   read, or write with one statement (INSERT ... RETURNING)
//	db.Exec                 write with one statement
//	db.ReadTx(ctx, fn)      several reads from one snapshot
//	db.Write(ctx, fn)       a write of several statements, in a transaction
//	db.SnapshotTx, db.BulkWrite  the same, for a whole database, without a deadline
//	db.Version(ctx)         a number that moves whenever anyone commits (see version.go)
//	db.Ping(ctx)
//	db.Close()
//
// Every error that means the database cannot be reached (refused, cut,
// restarting, shutting down, too slow to answer within opTimeout) comes
// back wrapping ErrUnavailable, so that the API can say so, and a server
// that lost its database recovers by itself: the pool connects again on
// the next request that needs a connection.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnavailable wraps every error that comes of not reaching the database.
var ErrUnavailable = errors.New("database unavailable")

// errOpTimeout is the cause of an operation that ran out of opTimeout.
var errOpTimeout = errors.New("the database did not answer in time")

// opTimeout bounds every operation, so that a request fails within a few
// seconds when the database is cut off, instead of hanging with it: a
// lookup or a write takes milliseconds when all is well.
const opTimeout = 5 * time.Second

// connectTimeout bounds a connection attempt, unless the URL sets
// connect_timeout itself.
const connectTimeout = 3 * time.Second

// DB is one PostgreSQL database, shared with any number of other processes.
type DB struct {
	pool     *pgxpool.Pool
	versions versionReader
	// lost is set by an error that shows a connection was lost, so that
	// the next version is a new one: what was cached before the loss
	// cannot be trusted after it (the database may be another, restored
	// or failed over).
	lost atomic.Bool
}

// Open connects to the database at url and brings its schema up to date.
// A URL that does not work is an error that names what failed, never the
// password.
func Open(ctx context.Context, url, schema string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, errors.New("not a valid PostgreSQL URL")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 { // the URL sets no connect_timeout
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	// Idle connections are checked and dropped, so that after the
	// database restarts the pool does not hand out dead ones for long.
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errors.New("not a valid PostgreSQL URL")
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx, schema); err != nil {
		pool.Close()
		return nil, connectError(cfg.ConnConfig, err)
	}
	return db, nil
}

// connectError is err as one line for a person starting the program: where
// it tried to connect and what went wrong, without the password.
func connectError(cfg *pgx.ConnConfig, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		err = errors.New(pgErr.Message)
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		err = errors.Unwrap(connErr)
		if errors.As(err, &pgErr) {
			err = errors.New(pgErr.Message)
		}
	}
	// A failed connection lists each attempt on a line of its own (with
	// sslmode=prefer, two for each address); a person starting the program
	// reads one line.
	lines := slices.Compact(strings.Split(err.Error(), "\n"))
	return fmt.Errorf("PostgreSQL database %q as user %q: %s", cfg.Database, cfg.User, strings.Join(lines, "; "))
}

// Close closes every connection.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// check turns an error into one that wraps ErrUnavailable when it comes of
// not reaching the database, and notes the loss.
func (db *DB) check(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && !errors.Is(context.Cause(ctx), errOpTimeout) {
		return err // the caller's own deadline or cancellation
	}
	if ctx.Err() != nil || unreachable(err) {
		db.lost.Store(true)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// unreachable reports whether err means the database could not be reached
// or went away: a failure to connect, a connection cut, or the server
// saying it is shutting down, starting, or full.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", "53300": // admin or crash shutdown, starting, too many connections
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exception
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "conn closed")
}

// withTimeout bounds an operation by opTimeout.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, opTimeout, errOpTimeout)
}

// Row is a row that checks its error as the rest of the package does.
type Row struct {
	db     *DB
	ctx    context.Context
	cancel context.CancelFunc
	row    pgx.Row
}

// Scan reads the row into dest; no row is pgx.ErrNoRows.
func (r Row) Scan(dest ...any) error {
	defer r.cancel()
	return r.db.check(r.ctx, r.row.Scan(dest...))
}

// QueryRow runs a query of one row.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) Row {
	ctx, cancel := withTimeout(ctx)
	return Row{db: db, ctx: ctx, cancel: cancel, row: db.pool.QueryRow(ctx, query, args...)}
}

// Exec runs a statement that returns no rows, on its own: a write of one
// statement needs no BEGIN and COMMIT around it, two round trips fewer,
// and is as durable when Exec returns.
func (db *DB) Exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	tag, err := db.pool.Exec(ctx, query, args...)
	return tag, db.check(ctx, err)
}

// Query runs fn on the rows of a query.
func (db *DB) Query(ctx context.Context, fn func(pgx.Rows) error, query string, args ...any) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return db.check(ctx, err)
	}
	defer rows.Close()
	if err := fn(rows); err != nil {
		return db.check(ctx, err)
	}
	return db.check(ctx, rows.Err())
}

// ReadTx runs fn in a read-only transaction at REPEATABLE READ: every query
// of fn sees one snapshot, as a page and its total must.
func (db *DB) ReadTx(ctx context.Context, fn func(pgx.Tx) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return db.check(ctx, pgx.BeginTxFunc(ctx, db.pool,
		pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn))
}

// Write runs fn in a transaction and commits it if fn returns nil. The
// commit is durable when Write returns (synchronous_commit, PostgreSQL's
// default, is left alone). PostgreSQL commits the writes of many
// connections in one flush of its log by itself: no batching is needed here.
func (db *DB) Write(ctx context.Context, fn func(pgx.Tx) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return db.check(ctx, pgx.BeginFunc(ctx, db.pool, fn))
}

// SnapshotTx is ReadTx for reading a whole database, which may take
// longer than any request: it has no deadline but the caller's.
func (db *DB) SnapshotTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.check(ctx, pgx.BeginTxFunc(ctx, db.pool,
		pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn))
}

// BulkWrite is Write for writing a whole database: no deadline but the
// caller's.
func (db *DB) BulkWrite(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.check(ctx, pgx.BeginFunc(ctx, db.pool, fn))
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return db.check(ctx, db.pool.Ping(ctx))
}

// IsUniqueViolation reports whether err is the refusal of a row that would
// break the unique constraint named constraint (SQLSTATE 23505).
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// ---- Migrations ----

// migrationHeader starts each migration in a schema: "-- migration N: why".
var migrationHeader = regexp.MustCompile(`(?m)^-- migration (\d+):.*$`)

// migrationLock is the advisory lock the migrations run under: a number
// of our own, the same in every instance.
const migrationLock int64 = 7_388_218_312_437

// migrate runs the migrations of schema that the database has not had yet,
// each in its own transaction, under an advisory lock held on one
// connection: several instances starting at once apply each exactly once.
func (db *DB) migrate(ctx context.Context, schema string) error {
	locs := migrationHeader.FindAllStringSubmatchIndex(schema, -1)
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return err
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock)

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return err
	}
	var current int
	err = conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = conn.Exec(ctx, `INSERT INTO schema_version VALUES (0)`)
	}
	if err != nil {
		return err
	}
	if current > len(locs) {
		return fmt.Errorf("database schema version %d is newer than this program (%d): upgrade tutorials", current, len(locs))
	}
	for i := current; i < len(locs); i++ {
		version, _ := strconv.Atoi(schema[locs[i][2]:locs[i][3]])
		if version != i+1 {
			return fmt.Errorf("schema: migration %d follows migration %d", version, i)
		}
		end := len(schema)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, schema[locs[i][1]:end]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", version, err)
		}
	}
	return nil
}
