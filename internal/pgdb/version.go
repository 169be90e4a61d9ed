package pgdb

// Change detection across processes. Version answers "has anyone committed
// since I last asked?" for any number of instances on one database, and for
// a person in psql, with no table, trigger or listener of ours: a
// transaction snapshot (pg_current_snapshot) names which transactions are
// visible, so two equal snapshots see the same data, and any commit
// anywhere makes the next snapshot differ. It is read from PostgreSQL's
// memory, not from a table, and requests that ask together share one
// reading, as on SQLite.
//
// A snapshot is cluster-wide: commits to other databases of the same
// server change it too. That costs cache hits, never correctness.

import (
	"context"
	"sync"
)

// versionReader gives out versions. A caller never gets a reading that
// began before it asked, which might miss a commit it knows of: when a
// reading runs, it waits for the next one, shared with everyone who came
// meanwhile.
type versionReader struct {
	mu      sync.Mutex
	reading bool
	next    *versionReading // the reading the callers that came meanwhile share

	// The version given out: count moves by one whenever a reading finds
	// a snapshot other than last, so that it grows in the order of the
	// readings, which run one at a time.
	last  string
	count int64
}

// versionReading is one reading, for every caller that asked before it
// began. done is closed once version and err are set.
type versionReading struct {
	done    chan struct{}
	version int64
	err     error
}

// Version is a number that grows whenever anyone has committed a change to
// the database since it was last asked, and stays the same otherwise. A
// cache of something in the database may be trusted for as long as Version
// stays the same, provided the version was read before the thing cached.
func (db *DB) Version(ctx context.Context) (int64, error) {
	v := &db.versions
	v.mu.Lock()
	if !v.reading {
		// Nobody is reading: read now, then make one more reading for
		// whoever came while this one ran.
		v.reading = true
		v.mu.Unlock()
		n, err := db.readVersion()
		v.mu.Lock()
		rd := v.next
		v.next = nil
		if rd == nil {
			v.reading = false
		}
		v.mu.Unlock()
		if rd != nil {
			go db.readFor(rd)
		}
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
	}
}

// readFor makes the reading rd, then the next, as long as callers keep
// coming while one runs.
func (db *DB) readFor(rd *versionReading) {
	v := &db.versions
	for rd != nil {
		rd.version, rd.err = db.readVersion()
		close(rd.done)
		v.mu.Lock()
		rd = v.next
		v.next = nil
		if rd == nil {
			v.reading = false
		}
		v.mu.Unlock()
	}
}

// readVersion reads the snapshot and turns it into a version. It runs
// without a caller's context: a reading is shared, and one caller that
// gives up must not fail the others.
func (db *DB) readVersion() (int64, error) {
	ctx, cancel := withTimeout(context.Background())
	defer cancel()
	var snapshot string
	err := db.check(ctx, db.pool.QueryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&snapshot))
	v := &db.versions
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if db.lost.Swap(false) || snapshot != v.last || v.count == 0 {
		v.last = snapshot
		v.count++
	}
	return v.count, nil
}
