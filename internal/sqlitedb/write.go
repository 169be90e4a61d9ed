package sqlitedb

// Group commit. With synchronous=FULL every commit waits for an fsync, a
// millisecond or more on most disks and far more on an SD card: one commit
// per request would cap writes at about a thousand a second, whatever the
// CPU. So the writes that arrive while a commit is under way wait for it and
// then go together, in one transaction with one fsync. Each still returns
// only once its own transaction is on disk, and each runs inside a SAVEPOINT
// of its own, so that one that fails (a slug taken) is undone alone and the
// others of its batch commit.

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync/atomic"
)

// maxBatch bounds a batch, so that the first write of a long queue does not
// wait for the last.
const maxBatch = 128

// The statements of every batch, compiled once with the caller's.
const (
	savepointSQL  = "SAVEPOINT write"
	rollbackToSQL = "ROLLBACK TO write"
	releaseSQL    = "RELEASE write"
)

// writer owns the writer connection once Open is done: one goroutine,
// commitBatches, runs every write, and checkpoints copies the WAL into the
// database file beside it (checkpoint.go).
type writer struct {
	db       *DB
	writes   chan *pendingWrite
	stmts    map[string]*sql.Stmt // compiled on the writer: see start
	batchEnd []string             // Options.BatchEnd

	walLimit   int
	walTooLong atomic.Bool // the checkpointer asking for a checkpoint between batches
	checkpoint *sql.DB     // the checkpointer's own connection
	lastFrames int         // the WAL's length at the last round, for checkpointRound alone
}

// pendingWrite is a write waiting for its batch.
type pendingWrite struct {
	ctx  context.Context // the caller's: a write whose caller is gone is skipped
	fn   func(context.Context, *Tx) error
	done chan error // fn's result, or the batch's, once it is on disk
}

// Write runs fn in the next batch and returns once that batch has
// committed: nil only if fn succeeded and its batch is on disk. fn may run
// several statements; they commit or roll back together.
func (db *DB) Write(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	p := &pendingWrite{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case db.writes.writes <- p:
	case <-db.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-p.done
}

// start compiles the statements of every batch, and the caller's, on the
// writer connection. It must run before the batches start: a batch holds
// the only writer connection, so nothing could be prepared on it then.
func (w *writer) start(ctx context.Context, db *DB, opts Options) error {
	w.db = db
	w.writes = make(chan *pendingWrite)
	w.walLimit = opts.WALLimit
	if w.walLimit == 0 {
		w.walLimit = walResetFrames
	}
	w.batchEnd = opts.BatchEnd
	w.stmts = make(map[string]*sql.Stmt)
	for _, q := range slices.Concat([]string{savepointSQL, rollbackToSQL, releaseSQL}, opts.WriteQueries, opts.BatchEnd) {
		st, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		w.stmts[q] = st
	}
	// busy_timeout 0: the checkpointer never waits for a lock. Its
	// TRUNCATE holds the write lock while it waits for the readers to leave
	// the WAL; waiting out a long reader (a backup) there would stall every
	// write. It gives up at once instead, and tries again next round.
	var err error
	w.checkpoint, err = sql.Open("sqlite", dsn(db.path, 0, ""))
	if err != nil {
		return err
	}
	w.checkpoint.SetMaxOpenConns(1)
	return nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range w.stmts {
		errs = append(errs, st.Close())
	}
	if w.checkpoint != nil {
		errs = append(errs, w.checkpoint.Close())
	}
	return errors.Join(errs...)
}

// commitBatches takes the writes as they come: the first that arrives, and
// with it every other already waiting, up to maxBatch. There is no timer:
// alone, a write commits at once; under load, the batch is whatever
// gathered while the last one was being written.
func (w *writer) commitBatches(stop <-chan struct{}) {
	for {
		var batch []*pendingWrite
		select {
		case p := <-w.writes:
			batch = append(batch, p)
		case <-stop:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case p := <-w.writes:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		w.commitBatch(batch)
		if w.walTooLong.Swap(false) {
			// See checkpoints. An error leaves the WAL as long as it
			// was, and the next round asks again.
			w.db.write.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// commitBatch writes a batch in one transaction, then runs the upkeep of
// Options.BatchEnd in it, and tells each write how it went.
//
// The statements run on a context that is never cancelled. A cancelled
// context makes the driver interrupt SQLite, and an interrupted write rolls
// back the whole transaction: one caller giving up would undo the writes
// of all the others. A write whose caller is gone before its turn is
// skipped instead.
func (w *writer) commitBatch(batch []*pendingWrite) {
	ctx := context.Background()
	results := make([]error, len(batch))
	err := w.db.inTx(ctx, func(tx *sql.Tx) error {
		t := &Tx{tx: tx, stmt: w.stmt}
		for i, p := range batch {
			if err := p.ctx.Err(); err != nil {
				results[i] = err
				continue
			}
			var err error
			if results[i], err = t.inSavepoint(ctx, p.fn); err != nil {
				return err // the transaction is in doubt: fail the batch
			}
		}
		for _, q := range w.batchEnd {
			if _, err := t.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	// What the batch says about the file: its own failure, or else a write
	// that failed alone because the file cannot be written (the disk is
	// full), noted after the commit, whose success would otherwise clear it.
	for _, r := range results {
		if err == nil && r != nil {
			w.db.noteWrite(r)
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

// stmt returns the compiled statement of query, or nil.
func (w *writer) stmt(query string) *sql.Stmt { return w.stmts[query] }

// inSavepoint runs fn inside a savepoint of t, rolled back if fn fails. It
// returns fn's error, and apart from it any error of the savepoint's own
// statements, after which the transaction cannot be trusted.
func (t *Tx) inSavepoint(ctx context.Context, fn func(context.Context, *Tx) error) (fnErr, err error) {
	if _, err := t.ExecContext(ctx, savepointSQL); err != nil {
		return nil, err
	}
	if fnErr = fn(ctx, t); fnErr != nil {
		if _, err := t.ExecContext(ctx, rollbackToSQL); err != nil {
			return nil, err
		}
	}
	_, err = t.ExecContext(ctx, releaseSQL)
	return fnErr, err
}
