package sqlitedb

// Change detection. Version answers "has anyone committed since I last
// asked?" through SQLite's public interface, PRAGMA data_version: on a given
// connection it moves whenever another connection, of this process or
// another, has committed. It reads no page of the database, only the WAL
// index in shared memory (though, like any statement, it takes and drops the
// WAL's read lock). Every authenticated request asks, so requests that ask
// together share one reading, the way the writer shares one commit among
// the writes that arrive together.

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
)

// versionReader reads PRAGMA data_version on a connection of its own: the
// number only means something compared with itself on one connection, and a
// connection runs one statement at a time. It runs the statement through
// the driver itself (sql.Conn.Raw), not database/sql's Stmt: on a connection
// no one else uses, database/sql's books (the pool, the Rows and their
// locks) are work without a purpose, on every request.
//
// A caller never gets a reading that began before it asked, which might
// miss a commit it knows of: when the connection is busy it waits for the
// next reading. When the connection is free the caller reads at once,
// itself, so a server under light load pays no hand-over between
// goroutines. reading says whether a reading runs; next is the reading the
// callers that arrived meanwhile will share, made by run when wanted wakes
// it. Both are needed: a reading under way is not one a newcomer may join.
type versionReader struct {
	conn *sql.Conn
	stmt driver.Stmt // prepared on conn's driver connection, used only inside conn.Raw

	mu      sync.Mutex
	reading bool
	next    *versionReading
	wanted  chan struct{}

	// The version given out: count moves by one whenever a reading finds
	// data_version other than last. SQLite promises only that data_version
	// changes, not that it grows; this count grows, in the order of the
	// readings, which run one at a time.
	last  int64
	count int64
}

// advance records a reading of data_version and returns the version it
// makes. It holds v.mu, and runs before the next reading may start.
func (v *versionReader) advance(dataVersion int64) int64 {
	if v.count == 0 || dataVersion != v.last {
		v.last = dataVersion
		v.count++
	}
	return v.count
}

// versionReading is one reading, for every caller that asked before it
// began. done is closed once version and err are set.
type versionReading struct {
	done    chan struct{}
	version int64
	err     error
}

// start takes the connection from the read pool, for good.
func (v *versionReader) start(ctx context.Context, pool *sql.DB) error {
	var err error
	if v.conn, err = pool.Conn(ctx); err != nil {
		return err
	}
	v.wanted = make(chan struct{}, 1)
	return v.conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("the driver's connection %T cannot prepare a statement", dc)
		}
		v.stmt, err = prep.PrepareContext(ctx, "PRAGMA data_version")
		return err
	})
}

// read runs the statement once.
func (v *versionReader) read() (n int64, err error) {
	err = v.conn.Raw(func(any) error {
		rows, err := v.stmt.(driver.StmtQueryContext).QueryContext(context.Background(), nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		var row [1]driver.Value
		if err := rows.Next(row[:]); err != nil {
			return err
		}
		var ok bool
		if n, ok = row[0].(int64); !ok {
			return fmt.Errorf("PRAGMA data_version gave %T", row[0])
		}
		return nil
	})
	return n, err
}

func (v *versionReader) close() error {
	var errs []error
	if v.stmt != nil {
		errs = append(errs, v.conn.Raw(func(any) error { return v.stmt.Close() }))
	}
	if v.conn != nil {
		errs = append(errs, v.conn.Close())
	}
	return errors.Join(errs...)
}

// Version is a number that grows whenever anyone, this process or another,
// has committed a change to the database since it was last asked, and
// stays the same otherwise. A cache of something in the database may be
// trusted for as long as Version stays the same, provided the version was
// read before the thing cached. A caller that asked after another got a
// number no smaller.
func (db *DB) Version(ctx context.Context) (int64, error) {
	v := &db.versions
	v.mu.Lock()
	if !v.reading && v.next == nil {
		v.reading = true
		v.mu.Unlock()
		n, err := v.read()
		v.mu.Lock()
		if err == nil {
			n = v.advance(n)
		}
		v.reading = false
		if v.next != nil {
			// Callers came while this reading ran: run makes the next one
			// for them. This is the only place that wakes it, and only once
			// per next, so the send never blocks.
			v.wanted <- struct{}{}
		}
		v.mu.Unlock()
		return n, err
	}
	rd := v.next
	if rd == nil {
		rd = &versionReading{done: make(chan struct{})}
		v.next = rd
	}
	v.mu.Unlock()
	select {
	case <-rd.done:
		return rd.version, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-db.stop:
		return 0, ErrClosed
	}
}

// run makes the shared readings until stop is closed. It takes the waiting
// callers' reading before it starts the statement, so that whoever asks
// while the statement runs waits for the next one; it goes on while callers
// keep coming. The readings run without a caller's context: a reading is
// shared, and one caller that gives up must not fail the others.
func (v *versionReader) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-v.wanted:
		}
		v.mu.Lock()
		for v.next != nil {
			rd := v.next
			v.next, v.reading = nil, true
			v.mu.Unlock()
			n, err := v.read()
			v.mu.Lock()
			if err == nil {
				n = v.advance(n)
			}
			rd.version, rd.err = n, err
			v.reading = false
			close(rd.done)
		}
		v.mu.Unlock()
	}
}
