package sqlitedb

// Statement reuse. SQLite compiles every statement before it runs it, and
// for a lookup by key the compiling costs more than the running. So the
// reads keep each query compiled, by its text, on the read pool
// (database/sql keeps one compiled copy per connection, made the first time
// the connection runs it), and the writer compiles the statements its
// callers name at Open (Options.WriteQueries). Only query texts built from
// fixed pieces come here, so the set stays small.

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// statements are the read pool's compiled queries.
type statements struct {
	pool  *sql.DB
	cache sync.Map // query text -> *sql.Stmt
}

// get returns query compiled on the pool, compiling it the first time.
func (s *statements) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.cache.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.cache.LoadOrStore(query, st); loaded {
		st.Close() // another caller compiled it meanwhile
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// lookup returns query's statement if it is compiled already, or nil.
func (s *statements) lookup(query string) *sql.Stmt {
	if st, ok := s.cache.Load(query); ok {
		return st.(*sql.Stmt)
	}
	return nil
}

func (s *statements) close() error {
	var errs []error
	s.cache.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	return errors.Join(errs...)
}

// QueryRow runs a query that returns at most one row, on the read pool.
func (db *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := db.stmts.get(ctx, query)
	if err != nil {
		// A *sql.Row carrying the error, as database/sql would give it.
		return db.read.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Query runs a query on the read pool.
func (db *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := db.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ReadTx runs fn in a read-only transaction: every query of fn sees the
// same snapshot of the database, whatever commits meanwhile.
func (db *DB) ReadTx(ctx context.Context, fn func(*Tx) error) error {
	return readTx(ctx, db.read, &db.stmts, fn)
}

// ScanTx is ReadTx on the scan pool, for reads that may take long: see
// scan.go.
func (db *DB) ScanTx(ctx context.Context, fn func(*Tx) error) error {
	return readTx(ctx, db.scan, &db.scanStmts, fn)
}

// readTx runs fn in a read-only transaction on pool, whose compiled
// statements are stmts.
//
// Inside it, a query that is not compiled yet is compiled on the
// transaction's own connection, once, and on the pool after the
// transaction ends. Compiling it on the pool while the transaction holds
// one of its connections could wait forever, once every connection is held
// that way.
func readTx(ctx context.Context, pool *sql.DB, stmts *statements, fn func(*Tx) error) error {
	tx, err := pool.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	var missed []string
	t := &Tx{tx: tx, stmt: func(query string) *sql.Stmt {
		st := stmts.lookup(query)
		if st == nil {
			missed = append(missed, query)
		}
		return st
	}}
	err = fn(t)
	tx.Rollback() // read-only: nothing to commit
	for _, q := range missed {
		stmts.get(ctx, q) // an error here only means compiling again next time
	}
	return err
}

// Tx is a transaction as the callers of ReadTx and Write see it: the
// methods of database/sql's, which use the compiled statement of a query
// where there is one.
type Tx struct {
	tx   *sql.Tx
	stmt func(query string) *sql.Stmt // nil when query has none
}

func (t *Tx) prepared(ctx context.Context, query string) *sql.Stmt {
	if st := t.stmt(query); st != nil {
		return t.tx.StmtContext(ctx, st)
	}
	return nil
}

// QueryRowContext runs a query that returns at most one row.
func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// QueryContext runs a query.
func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// ExecContext runs a statement that returns no rows.
func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}
