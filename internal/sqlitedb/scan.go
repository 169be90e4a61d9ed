package sqlitedb

// Scans: the reads that may take long, on a pool of their own.
//
//	db.ScanTx(ctx, fn)   like ReadTx, on the scan pool
//
// A lookup by key (a tutorial by its slug, an API key by its hash) costs
// the same however large the database grows; a list or a search may walk
// many rows. If both shared one pool, a few clients sending expensive
// searches could hold every connection, and every lookup would wait behind
// them. So the reads that may walk many rows take a connection from a
// smaller pool of their own: when it is busy they queue there, and the
// lookups keep the read pool to themselves. (The queue is database/sql's
// own wait for a free connection, which gives up when the caller's
// context ends: a deadline set by the caller covers the wait and the query
// alike.)

import "database/sql"

// scanConns is the default size of the scan pool: enough for a search to
// run beside a deep page, and few enough that on a small machine scans
// cannot take every core from the lookups.
const scanConns = 2

// openScans opens the scan pool, read-only as the read pool is.
func (db *DB) openScans(opts Options) error {
	n := opts.ScanConns
	if n <= 0 {
		n = scanConns
	}
	var err error
	db.scan, err = sql.Open("sqlite", dsn(db.path, lockWait, readPragmas))
	if err != nil {
		return err
	}
	db.scan.SetMaxOpenConns(n)
	db.scan.SetMaxIdleConns(n)
	db.scan.SetConnMaxIdleTime(0)
	db.scan.SetConnMaxLifetime(0)
	db.scanStmts.pool = db.scan
	return nil
}
