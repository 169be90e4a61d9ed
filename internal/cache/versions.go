package cache

// Versions: one reading of the database's version per request, for every
// cache the request meets.

import (
	"context"
	"sync/atomic"
)

// Versions reads a database's version for several caches and remembers the
// newest reading. Read asks the database; Latest answers from memory with
// the newest version any Read has seen. Versions grow: a larger number is a
// later state of the database.
//
// The rule that makes Latest safe, stated here and kept by the server's
// route table: a request may use a cache whose versions come from Latest
// only after it has made a Read of its own, after it began. The server's
// key check (a cache on Read) is that Read, and every route whose answers
// are kept (the caches on Latest) sits behind it. Then a request that
// begins after a commit is answered at a version no older than its own
// Read, which saw the commit; while one database reading serves both the
// key check and the answer.
type Versions struct {
	read   func(context.Context) (int64, error)
	latest atomic.Int64
}

// NewVersions returns Versions that reads the version with read.
func NewVersions(read func(context.Context) (int64, error)) *Versions {
	return &Versions{read: read}
}

// Read asks the database for its version, and remembers it if it is the
// newest seen.
func (v *Versions) Read(ctx context.Context) (int64, error) {
	n, err := v.read(ctx)
	if err != nil {
		return 0, err
	}
	for {
		seen := v.latest.Load()
		if n <= seen || v.latest.CompareAndSwap(seen, n) {
			return n, nil
		}
	}
}

// Latest is the newest version a Read has seen, without asking the
// database. See Versions for when it may be used.
func (v *Versions) Latest(context.Context) (int64, error) {
	return v.latest.Load(), nil
}
