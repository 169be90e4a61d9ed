package main

// When PostgreSQL goes away: stopped, restarted, or cut off by the network.
// Requests answer 503 Database unavailable in the envelope within a few
// seconds, never hang or crash, and the server serves and writes again by
// itself when the database is back; a write that got a 201 is kept.

import (
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ownPostgres starts a PostgreSQL cluster for t alone, which t may halt and
// start again, and returns it with the URL of an empty database on it.
func ownPostgres(t *testing.T) (*pgCluster, string) {
	t.Helper()
	c, err := startPGCluster()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no PostgreSQL cluster of the test's own, and CI must run it: %v", err)
		}
		t.Skipf("no PostgreSQL cluster of the test's own (apt-get install postgresql): %v", err)
	}
	t.Cleanup(func() { c.stop() })
	admin, err := sql.Open("pgx", c.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE outage"); err != nil {
		t.Fatal(err)
	}
	return c, c.url("outage")
}

// requestsOfEveryKind sends one request of each kind the server answers
// from the database, at once, and returns each one's status and error.
func requestsOfEveryKind(t *testing.T, ts *testServer) map[string]string {
	t.Helper()
	reqs := map[string][]string{
		"GET one":  {"GET", "/api/v1/tutorials/kept", ""},
		"GET list": {"GET", "/api/v1/tutorials", ""},
		"POST":     {"POST", "/api/v1/tutorials", `{"title":"During","slug":"during"}`},
		"PATCH":    {"PATCH", "/api/v1/tutorials/kept", `{"title":"During"}`},
		"DELETE":   {"DELETE", "/api/v1/tutorials/kept", ""},
		"healthz":  {"GET", "/healthz", ""},
	}
	got := make(map[string]string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, r := range reqs {
		wg.Go(func() {
			resp := ts.request(t, r[0], r[1], ts.writeKey, r[2], "Content-Type", "application/json")
			mu.Lock()
			defer mu.Unlock()
			got[name] = fmt.Sprintf("%d %s", resp.status, resp.error)
		})
	}
	wg.Wait()
	return got
}

// everyKind maps each kind of request to want.
func everyKind(want string) map[string]string {
	return map[string]string{"GET one": want, "GET list": want, "POST": want, "PATCH": want, "DELETE": want, "healthz": want}
}

func TestStoppedDatabaseIs503UntilItIsBack(t *testing.T) {
	c, db := ownPostgres(t)
	ts := serveTestDatabase(t, openTestDatabase(t, postgresEngine, db), testConfig(t))
	kept := ts.create(t, map[string]any{"title": "Kept", "slug": "kept"})
	ts.request(t, "GET", "/api/v1/tutorials/kept", ts.readKey, "") // in the cache

	if err := c.halt(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(everyKind("503 Database unavailable"), requestsOfEveryKind(t, ts)); diff != "" {
		t.Errorf("with the database stopped (-want +got):\n%s", diff)
	}

	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	// Back, on the same address: the same server serves and writes again.
	if diff := cmp.Diff(kept, decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/kept", ts.readKey, ""))); diff != "" {
		t.Errorf("GET after the restart (-want +got):\n%s", diff)
	}
	ts.create(t, map[string]any{"title": "After", "slug": "after"})
	if resp := ts.request(t, "GET", "/healthz", "", ""); resp.status != http.StatusOK {
		t.Errorf("/healthz after the restart: %d %q", resp.status, resp.error)
	}
}

// Writers keep writing while PostgreSQL restarts (a fast shutdown, as a
// failover or an upgrade makes): every create that got a 201 is there
// afterwards, and the others got a 503, never a 500.
func TestAcknowledgedWritesSurviveARestartOfPostgres(t *testing.T) {
	c, db := ownPostgres(t)
	ts := serveTestDatabase(t, openTestDatabase(t, postgresEngine, db), testConfig(t))

	const writers = 4
	var (
		mu        sync.Mutex
		acked     []string
		refused   atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		ackedNow  = make(chan struct{}, 1000)
		refusedAt = make(chan struct{}, 1000)
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				slug := fmt.Sprintf("w%d-%d", w, i)
				resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey,
					fmt.Sprintf(`{"title":"Write %d %d","slug":%q}`, w, i, slug), "Content-Type", "application/json")
				switch resp.status {
				case http.StatusCreated:
					mu.Lock()
					acked = append(acked, slug)
					mu.Unlock()
					select {
					case ackedNow <- struct{}{}:
					default:
					}
				case http.StatusServiceUnavailable:
					refused.Add(1)
					select {
					case refusedAt <- struct{}{}:
					default:
					}
				default:
					t.Errorf("create %s: %d %q, want 201 or 503", slug, resp.status, resp.error)
					return
				}
			}
		})
	}
	waitFor := func(ch chan struct{}, n int) {
		for range n {
			<-ch
		}
	}
	waitFor(ackedNow, 20)
	if err := c.halt(); err != nil {
		t.Fatal(err)
	}
	waitFor(refusedAt, 1) // the writers met the stopped database
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	for len(ackedNow) > 0 { // what was acknowledged before the restart
		<-ackedNow
	}
	waitFor(ackedNow, 20) // and writes again after it
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for _, slug := range acked {
		if resp := ts.request(t, "GET", "/api/v1/tutorials/"+slug, ts.readKey, ""); resp.status != http.StatusOK {
			t.Errorf("%s got a 201 but is not there after the restart: %d", slug, resp.status)
		}
	}
	t.Logf("%d creates acknowledged, %d answered 503", len(acked), refused.Load())
}

// cutProxy stands between the server and PostgreSQL on loopback. Cut, it
// passes nothing on and closes nothing, as a cable pulled out or a
// firewall dropping packets would: a connection waits for an answer that
// never comes.
type cutProxy struct {
	ln      net.Listener
	target  string
	cut     atomic.Bool
	healed  chan struct{}
	healing sync.Once
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, healed: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.heal() })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer client.Close()
			server, err := net.Dial("tcp", p.target)
			if err != nil {
				return
			}
			defer server.Close()
			done := make(chan struct{}, 2)
			go func() { p.relay(server, client); done <- struct{}{} }()
			go func() { p.relay(client, server); done <- struct{}{} }()
			<-done
		}()
	}
}

// relay copies from src to dst until either fails; while the proxy is cut,
// what it reads is held back.
func (p *cutProxy) relay(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if p.cut.Load() {
			<-p.healed // dropped, and the connection is held open
			return
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) heal() { p.healing.Do(func() { close(p.healed) }) }

// A network that stops passing packets: no refusal to see, only silence.
// Requests must not wait on it for longer than a few seconds.
func TestDatabaseCutOffIs503WithinSeconds(t *testing.T) {
	db := newTestDB(t, postgresEngine)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	ts := serveTestDatabase(t, openTestDatabase(t, postgresEngine, u.String()), testConfig(t))
	ts.create(t, map[string]any{"title": "Kept", "slug": "kept"})

	proxy.cut.Store(true)
	defer proxy.heal() // before the cleanups, which close the store through it
	// Each request waits for the database's deadline (internal/pgdb's
	// opTimeout, or its connect timeout for a new connection) and no
	// longer: were one to hang, the test would, and go test's -timeout
	// would fail it.
	if diff := cmp.Diff(everyKind("503 Database unavailable"), requestsOfEveryKind(t, ts)); diff != "" {
		t.Errorf("cut off (-want +got):\n%s", diff)
	}
}
