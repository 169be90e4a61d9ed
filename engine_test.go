package main

// The engine matrix: every test of the contract runs once on SQLite and once
// on PostgreSQL, as the same function, so that the two cannot drift apart.
//
// For PostgreSQL the tests need a server on which they may create databases:
// TUTORIALS_TEST_POSTGRES when it names one (a URL such as
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), else a
// throwaway cluster that the first postgres test starts in a temp dir and
// TestMain stops. Where neither is possible the postgres arm skips with the
// reason, except in CI, where a skip would hide a suite that never ran.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx", for openSQL and the admin connection
)

// engine names a database engine a test runs on; its name is the subtest's.
type engine string

const (
	sqliteEngine   engine = "sqlite"
	postgresEngine engine = "postgres"
)

// forEachEngine runs f once per engine, as the subtests sqlite and postgres,
// so that `go test -run '/sqlite'` runs one engine's arm of every test.
func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) {
	t.Helper()
	for _, e := range []engine{sqliteEngine, postgresEngine} {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

// newTestDB returns the -db value of a fresh, empty database of engine e,
// removed when t ends. The schema is not there yet: OpenStore makes it.
func newTestDB(t testing.TB, e engine) string {
	t.Helper()
	switch e {
	case sqliteEngine:
		return filepath.Join(t.TempDir(), "test.db")
	case postgresEngine:
		return testPostgres.newDatabase(t)
	}
	t.Fatalf("no engine %q", e)
	return ""
}

// TestMain stops the throwaway PostgreSQL, if a test started one, so that
// no server outlives the test binary.
func TestMain(m *testing.M) {
	code := m.Run()
	testPostgres.close()
	os.Exit(code)
}

// ---- PostgreSQL for the tests ----

// testPostgres is the one PostgreSQL server of this test binary, started
// on first use: a cluster costs a second or two to make, a database on it
// a few milliseconds.
var testPostgres = &postgresForTests{}

type postgresForTests struct {
	once    sync.Once
	err     error    // why there is no server: the postgres arm skips, or fails in CI
	base    *url.URL // the server; a database's URL replaces the path
	admin   *sql.DB  // for CREATE and DROP DATABASE
	cluster *pgCluster
	n       atomic.Int64
	// create is the CREATE DATABASE after the name: on PostgreSQL 15 and
	// later, FILE_COPY, a third of the time of the default WAL_LOG for a
	// database as small as the tests' (with fsync off, its checkpoint is
	// cheap).
	create string
}

// newDatabase creates an empty database and returns its URL; t's cleanup
// drops it, so that a shared server does not fill up.
func (p *postgresForTests) newDatabase(t testing.TB) string {
	t.Helper()
	p.once.Do(p.start)
	if p.err != nil {
		// CI installs PostgreSQL (.ci/run): there, a skip would hide half
		// the suite.
		if os.Getenv("CI") != "" {
			t.Fatalf("no PostgreSQL, and CI must run the postgres arm: %v", p.err)
		}
		t.Skipf("no PostgreSQL (apt-get install postgresql, or set TUTORIALS_TEST_POSTGRES): %v", p.err)
	}
	// The process id keeps two test binaries on one shared server apart.
	name := fmt.Sprintf("tutorials_test_%d_%d", os.Getpid(), p.n.Add(1))
	if _, err := p.admin.Exec("CREATE DATABASE " + name + p.create); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	t.Cleanup(func() {
		// FORCE: a store or a process a test left open must not keep the
		// database, nor fail the test that is already over.
		if _, err := p.admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("DROP DATABASE %s: %v", name, err)
		}
	})
	u := *p.base
	u.Path = "/" + name
	return u.String()
}

// start connects to TUTORIALS_TEST_POSTGRES, or starts a cluster.
func (p *postgresForTests) start() {
	raw := os.Getenv("TUTORIALS_TEST_POSTGRES")
	if raw == "" {
		p.cluster, p.err = startPGCluster()
		if p.err != nil {
			return
		}
		raw = p.cluster.url("postgres")
	}
	if p.base, p.err = url.Parse(raw); p.err != nil {
		// Not the parser's error, which quotes the URL, password and all.
		p.err = errors.New("TUTORIALS_TEST_POSTGRES is not a URL")
		return
	}
	if p.admin, p.err = sql.Open("pgx", raw); p.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var version int
	if err := p.admin.QueryRowContext(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		p.err = fmt.Errorf("%s: %v", p.base.Redacted(), err)
		return
	}
	if version >= 150000 {
		p.create = " STRATEGY FILE_COPY"
	}
}

func (p *postgresForTests) close() {
	if p.admin != nil {
		p.admin.Close()
	}
	if p.cluster != nil {
		if err := p.cluster.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the tests' PostgreSQL:", err)
		}
	}
}

// pgCluster is a PostgreSQL cluster of its own in a temp dir, run as a user
// who is not root (the server refuses root), with fsync off: nothing in it
// needs to survive the machine. A test of faults may start one of its own
// and halt and start it again; it keeps its port.
type pgCluster struct {
	dir    string // data in dir/data, the socket in dir, the log in dir/log
	bin    string // where initdb and postgres are
	cred   *syscall.Credential
	port   int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process has exited
}

// startPGCluster makes a cluster with initdb and starts its server on a
// free loopback port.
func startPGCluster() (*pgCluster, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tutorials-pg-")
	if err != nil {
		return nil, err
	}
	c := &pgCluster{dir: dir, bin: bin, cred: cred}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			c.remove()
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--auth=trust", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %v: %s", err, lastLine(out))
	}
	// A free port may be taken between asking and listening: try another.
	for attempt := 1; ; attempt++ {
		c.port = 0
		if err = c.start(); err == nil {
			return c, nil
		}
		if attempt == 3 {
			c.remove()
			return nil, err
		}
	}
}

// start starts the server, on its port or a free one, and waits until it
// takes connections.
func (c *pgCluster) start() error {
	if c.port == 0 {
		var err error
		if c.port, err = freePort(); err != nil {
			return err
		}
	}
	log, err := os.OpenFile(filepath.Join(c.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	// The server itself, not pg_ctl, so that it is our child: Pdeathsig
	// stops it if the test binary dies before TestMain can.
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", filepath.Join(c.dir, "data"),
		"-p", strconv.Itoa(c.port), "-k", c.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	c.cmd.Stdout, c.cmd.Stderr = log, log
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	exited := make(chan struct{})
	c.exited = exited
	started := make(chan error, 1)
	go func(cmd *exec.Cmd) {
		// Pdeathsig comes when the thread that started the server ends,
		// not the process: this goroutine keeps its thread until then.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		cmd.Wait()
		close(exited)
	}(c.cmd)
	if err := <-started; err != nil {
		c.cmd = nil
		return fmt.Errorf("postgres: %v", err)
	}
	if err := c.waitReady(30 * time.Second); err != nil {
		c.halt()
		return err
	}
	return nil
}

// halt shuts the server down (fast: SIGINT ends the sessions) and keeps
// the cluster, for start to start again.
func (c *pgCluster) halt() error {
	if c.cmd == nil {
		return nil
	}
	defer func() { c.cmd = nil }()
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		return nil
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
		return errors.New("postgres did not stop within 30s; killed")
	}
}

// stop halts the server and removes the cluster.
func (c *pgCluster) stop() error {
	err := c.halt()
	c.remove()
	return err
}

// url is the URL of the database name on c.
func (c *pgCluster) url(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// waitReady polls until the server answers, it exits, or d has passed.
func (c *pgCluster) waitReady(d time.Duration) error {
	db, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited at start: %s", c.lastLogLine())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not answer within %v: %v", d, err)
		}
	}
}

func (c *pgCluster) remove() { os.RemoveAll(c.dir) }

func (c *pgCluster) lastLogLine() string {
	out, _ := os.ReadFile(filepath.Join(c.dir, "log"))
	return lastLine(out)
}

// lastLine is the last line of a program's output that says something, for
// a one-line reason.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// postgresBinDir finds initdb and postgres: on the PATH, else where Debian's
// postgresql package puts them, the newest version first.
func postgresBinDir() (string, error) {
	// Through a symlink on the PATH to the directory that holds postgres too.
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err = filepath.EvalSymlinks(p); err == nil {
			if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
				return filepath.Dir(p), nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest first, by the version number, not the text: 9 is older than 15.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb on the PATH or in /usr/lib/postgresql/*/bin")
}

// postgresCredential is who runs the server: the user postgres when the
// tests run as root, which the server refuses, else nil, the tests' own
// user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses root: %v", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a loopback port that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ---- SQL behind the server's back ----

// openSQL opens a connection of its own to the database db (a -db value:
// a SQLite file or a PostgreSQL URL), as another process or a person with
// the sqlite3 shell or psql would: for a test to look at what the server
// stored, or change it behind the server's back. Write its SQL so that both
// engines take it: $1, $2 for arguments (SQLite reads them too).
func openSQL(t testing.TB, db string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+db+"?_pragma=busy_timeout(5000)"
	if isPostgresURL(db) {
		driver, dsn = "pgx", db
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestPostgresForTests checks the harness itself, apart from the store:
// two fresh databases on the tests' PostgreSQL, each empty, each its own.
func TestPostgresForTests(t *testing.T) {
	ctx := context.Background()
	var dbs []*sql.DB
	for range 2 {
		u := newTestDB(t, postgresEngine)
		if !isPostgresURL(u) {
			t.Fatalf("newTestDB gave %q, not a PostgreSQL URL", u)
		}
		db := openSQL(t, u)
		var tables int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("a fresh database has %d tables", tables)
		}
		dbs = append(dbs, db)
	}
	if _, err := dbs[0].ExecContext(ctx, `CREATE TABLE t (s text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := dbs[0].ExecContext(ctx, `INSERT INTO t VALUES ($1)`, "Über"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := dbs[0].QueryRowContext(ctx, `SELECT s FROM t`).Scan(&got); err != nil || got != "Über" {
		t.Errorf("read back %q, %v; want Über: the database is not UTF-8", got, err)
	}
	if _, err := dbs[1].ExecContext(ctx, `SELECT 1 FROM t`); err == nil {
		t.Error("the second database sees the first one's table")
	}
}
