package main

// The bench on PostgreSQL (issue 13): a throwaway cluster of the bench's
// own, or the server that -postgres names; in it a fresh database for each
// size, made the way a user would make one (the server's own "keys
// create") and filled with the very tutorials the SQLite bench gets.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is the PostgreSQL server the bench makes its databases in.
type cluster struct {
	admin string // the URL of a database to connect to for CREATE DATABASE
	about string // what BENCHMARKS.md should say of it: version and settings
	stop  func() // for a throwaway cluster: stop it and remove its files
}

// startCluster runs a throwaway PostgreSQL in a directory of its own: the
// newest of Debian's /usr/lib/postgresql/*/bin, with its defaults (fsync
// and synchronous_commit on), listening on a free loopback port. The server
// refuses to run as root, so as root it runs as the postgres user.
func startCluster() (*cluster, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		return nil, errors.New("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql), or pass -postgres URL")
	}
	slices.SortFunc(bins, func(a, b string) int { return pgMajor(a) - pgMajor(b) })
	binDir := filepath.Dir(bins[len(bins)-1])

	dir, err := os.MkdirTemp("", "tutorials-bench-pg-")
	if err != nil {
		return nil, err
	}
	var as []string // the command that runs a program as the cluster's owner
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("PostgreSQL refuses to run as root, and there is no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		as = []string{"runuser", "-u", "postgres", "--"}
	}
	command := func(name string, args ...string) *exec.Cmd {
		argv := append(slices.Clone(as), append([]string{filepath.Join(binDir, name)}, args...)...)
		return exec.Command(argv[0], argv[1:]...)
	}
	data := filepath.Join(dir, "data")
	out, err := command("initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth=trust").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	out, err = command("pg_ctl", "start", "-w", "-D", data, "-l", filepath.Join(dir, "postgres.log"),
		"-o", "-p "+port+" -c listen_addresses=127.0.0.1 -k "+dir).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_ctl start: %w\n%s", err, out)
	}
	c := &cluster{admin: "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable"}
	c.stop = func() {
		command("pg_ctl", "stop", "-w", "-m", "fast", "-D", data).Run()
		os.RemoveAll(dir)
	}
	return c, nil
}

// pgMajor is the major version in a path /usr/lib/postgresql/N/bin/...
func pgMajor(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// describe fills c.about: the server's version and the settings that
// matter to the bench, as the server reports them.
func (c *cluster) describe(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var about []string
	for _, q := range []string{"server_version", "shared_buffers", "work_mem", "max_connections",
		"fsync", "synchronous_commit", "wal_level", "max_wal_size", "checkpoint_timeout"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", q).Scan(&v); err != nil {
			return err
		}
		about = append(about, q+"="+v)
	}
	c.about = strings.Join(about, ", ")
	return nil
}

// database returns the URL of the database name in the cluster, and
// whether it already existed; when not, it creates it, empty.
func (c *cluster) database(ctx context.Context, name string) (string, bool, error) {
	u, err := url.Parse(c.admin)
	if err != nil {
		return "", false, err
	}
	u.Path = "/" + name
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		return "", false, err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", false, err
	}
	if !exists {
		// A name cannot be a parameter; this one is the bench's own.
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", false, err
		}
	}
	return u.String(), exists, nil
}

// newPostgresDatabase makes the database name in c (or reuses it, when
// reuse is set and it exists), with a key made by the server's own "keys
// create", and seeds it with rows tutorials if it was not there.
func newPostgresDatabase(ctx context.Context, c *cluster, bin, name string, rows int, reuse bool) (dbURL, key string, err error) {
	dbURL, exists, err := c.database(ctx, name)
	if err != nil {
		return "", "", err
	}
	if exists && !reuse {
		return "", "", fmt.Errorf("database %s already exists", name)
	}
	if key, err = newKey(bin, dbURL); err != nil {
		return "", "", err
	}
	if exists {
		fmt.Printf("\nreusing database %s\n", name)
		return dbURL, key, nil
	}
	start := time.Now()
	if err := seedPostgres(ctx, dbURL, rows); err != nil {
		return "", "", err
	}
	fmt.Printf("\nseeded %d tutorials in %v into PostgreSQL database %s\n", rows, time.Since(start).Round(time.Millisecond), name)
	return dbURL, key, nil
}

// seedBatch is how many rows each transaction of the seed copies in. Under
// the schema's first migration the count trigger added each row to one row
// of tutorial_counts, and within one transaction every such update left a
// row version that the next one must step over: a million rows in one
// transaction would have taken hours. Since migration 2 each COPY is
// counted once; the batches stay, so that the bench seeds databases of
// either schema alike.
const seedBatch = 2_000

// seedPostgres copies n tutorials of seedTutorials into the database at
// dbURL, with the schema's triggers doing their work on every row (the
// search column and the counts, as for a tutorial created through the
// API). The indexes other than the constraints' are dropped first and made
// again after, from their own definitions: one sorted build each instead
// of a million random inserts. Then VACUUM, as autovacuum would have done
// by the time a real library grew that large.
func seedPostgres(ctx context.Context, dbURL string, n int) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = 'tutorials'
		AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'tutorials'::regclass)
		ORDER BY indexname`)
	if err != nil {
		return err
	}
	type index struct{ Name, Definition string }
	indexes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[index])
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, "DROP INDEX "+pgx.Identifier{ix.Name}.Sanitize()); err != nil {
			return err
		}
	}

	if err := copyTutorials(ctx, dbURL, n); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '256MB'"); err != nil {
		return err
	}
	for _, ix := range indexes {
		if _, err := conn.Exec(ctx, ix.Definition); err != nil {
			return fmt.Errorf("%s: %w", ix.Name, err)
		}
	}
	// The count trigger's million updates of a few rows left
	// tutorial_counts at 10 MB for its 51 rows, which every uncached list
	// then read whole (40 ms): a table written one create at a time keeps
	// its size down by pruning each page as it goes. VACUUM FULL gives it
	// that size back.
	if _, err := conn.Exec(ctx, "VACUUM FULL tutorial_counts"); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "VACUUM ANALYZE")
	return err
}

// seedConnections is how many connections copy the tutorials in at once:
// the triggers' work is most of the seed's time, and each connection's runs
// on a core of its own.
const seedConnections = 2

// copyTutorials copies the n tutorials of seedTutorials into the
// database, seedBatch rows a transaction, on seedConnections connections.
// Each row is given its id, the number of its slug, as the SQLite seed's
// rows have theirs; the ids the server draws carry on after them.
func copyTutorials(ctx context.Context, dbURL string, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan [][]any, seedConnections)
	errs := make(chan error, seedConnections+1)
	for range seedConnections {
		go func() {
			errs <- copyBatches(ctx, dbURL, batches)
		}()
	}
	go func() {
		defer close(batches)
		id := int64(0)
		batch := make([][]any, 0, seedBatch)
		err := seedTutorials(n, func(t seedTutorial) error {
			id++
			batch = append(batch, []any{id, t.title, t.slug, t.excerpt, t.content, t.category, t.difficulty,
				int64(t.estimatedTime), t.published, t.created, t.created})
			if len(batch) < seedBatch && id < int64(n) {
				return nil
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([][]any, 0, seedBatch)
			return nil
		})
		errs <- err
	}()
	for range seedConnections + 1 {
		if err := <-errs; err != nil {
			return err
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT setval(pg_get_serial_sequence('tutorials', 'id'), max(id)) FROM tutorials`)
	return err
}

// copyBatches copies each batch it receives, in a transaction of its own.
func copyBatches(ctx context.Context, dbURL string, batches <-chan [][]any) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	columns := []string{"id", "title", "slug", "excerpt", "content", "category", "difficulty", "estimated_time",
		"published_at", "created_at", "updated_at"}
	for batch := range batches {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"tutorials"}, columns, pgx.CopyFromRows(batch)); err != nil {
			return err
		}
	}
	return nil
}

// pgDeepPosition is the sort key and id of the last item of page n of the
// list in its default order, 20 a page.
func pgDeepPosition(ctx context.Context, dbURL string, n int) (string, int64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close(ctx)
	var published time.Time
	var id int64
	err = conn.QueryRow(ctx, `SELECT published_at, id FROM tutorials ORDER BY published_at DESC, id DESC LIMIT 1 OFFSET $1`,
		n*20-1).Scan(&published, &id)
	return published.UTC().Format(time.RFC3339), id, err
}

// pgCount is how many tutorials the database at dbURL holds, and how many
// of them the seed made (see countSQL).
func pgCount(ctx context.Context, dbURL string) (rows, seeded int, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, countSQL).Scan(&rows, &seeded)
	return rows, seeded, err
}

// runPostgres runs the cases on PostgreSQL: the throughput cases on a fresh
// database of o.rows tutorials, then, unless -skip-1m, page 1 of the list
// with as many connections at o.rows and at o.bigRows tutorials, and the
// cases of scale on fresh servers of both sizes.
func runPostgres(o options, bin, dir, script string, b *baseline) error {
	fmt.Println("\n== PostgreSQL")
	ctx := context.Background()
	c := &cluster{admin: o.postgres, stop: func() {}}
	if o.postgres == "" {
		var err error
		if c, err = startCluster(); err != nil {
			return err
		}
	}
	defer c.stop()
	if err := c.describe(ctx); err != nil {
		return err
	}
	fmt.Println("PostgreSQL:", c.about)
	prefix := "tutorials_bench_" + strconv.FormatInt(time.Now().Unix(), 36)
	var made []string // the databases to drop at the end, in a server that is not the bench's
	defer func() {
		if o.postgres != "" && !o.keep {
			c.drop(ctx, made)
		}
	}()
	newDB := func(name string, rows int, reuse bool) (string, string, error) {
		dbURL, key, err := newPostgresDatabase(ctx, c, bin, name, rows, reuse)
		if err == nil && !reuse {
			made = append(made, name)
		}
		return dbURL, key, err
	}

	dbURL, key, err := newDB(prefix+"_main", o.rows, false)
	if err != nil {
		return err
	}
	srv, err := startServer(bin, dbURL, dir, "pg-server")
	if err != nil {
		return err
	}
	defer srv.stop()
	base, err := runThroughput(o, dir, script, srv, key, b)
	if err != nil || o.skipBig || o.only != "" && o.only != "scale" {
		return err
	}
	srv.stop() // its creates are in its database; the cases of scale start afresh

	small, stopSmall, err := pgScaleDatabase(ctx, bin, dir, "pg-small", o.rows, func() (string, string, error) {
		return newDB(prefix+"_small", o.rows, false)
	})
	if err != nil {
		return err
	}
	defer stopSmall()
	bigName := o.pgBigDB
	if bigName == "" || o.postgres == "" {
		bigName = prefix + "_big"
	}
	big, stopBig, err := pgScaleDatabase(ctx, bin, dir, "pg-big", o.bigRows, func() (string, string, error) {
		return newDB(bigName, o.bigRows, o.pgBigDB != "" && o.postgres != "")
	})
	if err != nil {
		return err
	}
	defer stopBig()

	// Page 1 of the list with every connection, the larger database between
	// two runs of the smaller, so that a change in the machine's load
	// between them shows.
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	var page1 []result
	for _, db := range []scaleDB{small, big, small} {
		r, err := measure(o, script, fmt.Sprintf("GET list page 1 at %d rows", db.rows), "list", db.srv, db.key, db.rows, tag)
		if err != nil {
			return err
		}
		r.peakRSS = db.srv.peakRSS()
		page1 = append(page1, r)
	}
	fmt.Printf("\n%d connections, %d wrk threads:\n\n", o.conns, o.threads)
	fmt.Println("| case | req/s | p50 | p99 | errors | peak RSS |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range page1 {
		fmt.Printf("| %s | %.0f | %s | %s | %d | %s |\n", r.name, r.rps, ms(r.p50), ms(r.p99), r.errors, mib(r.peakRSS))
	}
	smallRPS := (page1[0].rps + page1[2].rps) / 2
	fmt.Printf("\nlist page 1 at %d rows: %.2f × its time per request at %d (by req/s), %.2f × by p50\n",
		big.rows, smallRPS/page1[1].rps, small.rows, float64(page1[1].p50)/float64((page1[0].p50+page1[2].p50)/2))

	return runScaleCases(o, dir, base, small, big)
}

// pgScaleDatabase makes a database with create and starts a server on it,
// as scaleDatabase does on SQLite.
func pgScaleDatabase(ctx context.Context, bin, dir, name string, rows int, create func() (string, string, error)) (scaleDB, func(), error) {
	dbURL, key, err := create()
	if err != nil {
		return scaleDB{}, nil, err
	}
	db := scaleDB{path: dbURL, key: key}
	if db.srv, err = startServer(bin, dbURL, dir, name); err != nil {
		return db, nil, err
	}
	if _, err := db.srv.waitReady(key, 60*time.Second); err != nil {
		db.srv.stop()
		return db, nil, err
	}
	if db.rows, db.seeded, err = pgCount(ctx, dbURL); err != nil {
		return db, db.srv.stop, err
	}
	n := depth(db.rows, 20, 0.8)
	published, id, err := pgDeepPosition(ctx, dbURL, n)
	db.deep = deepCursor(published, id, n)
	return db, db.srv.stop, err
}

// drop drops the databases names, made by the bench in a server of
// someone else's.
func (c *cluster) drop(ctx context.Context, names []string) {
	conn, err := pgx.Connect(ctx, c.admin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: drop the bench's databases:", err)
		return
	}
	defer conn.Close(ctx)
	for _, name := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: drop the bench's databases:", err)
		}
	}
}
