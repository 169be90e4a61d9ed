package main

// This file starts the servers the tests speak to, one helper per way of
// starting one, on a real database of either engine, and holds the helpers
// that send requests and check the envelope of every answer.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"tutorials/internal/lastused"

	"github.com/google/go-cmp/cmp"
)

// ---- The test server ----

// testServer is the real handler, on a real database of one engine, behind a
// real HTTP server, with one key of each scope.
type testServer struct {
	url      string
	store    Store
	calls    *countingStore // the store as the server at url sees it: see cache_test.go
	engine   engine
	db       string // the -db value of the database: a SQLite file or a PostgreSQL URL
	usage    *lastused.Record
	logs     *syncBuffer
	clock    *fakeClock // the server's: it moves only when the test moves it
	api      *server    // the server at url
	writeKey string
	readKey  string
}

// syncBuffer is a bytes.Buffer that the server's goroutines may log into
// while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testConfig is the server's configuration for tests: the defaults of the
// serve command, with rate limiting off so that a test may send as many
// requests as it needs. The tests of rate limiting turn it back on.
func testConfig(t testing.TB) config {
	t.Helper()
	cfg, err := parseServeConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.rate = 0
	return cfg
}

// newTestServer starts the API on a fresh database of engine e.
func newTestServer(t *testing.T, e engine) *testServer {
	t.Helper()
	return newTestServerWith(t, e, testConfig(t))
}

// newTestServerWith starts the API with cfg on a fresh database of engine e.
func newTestServerWith(t *testing.T, e engine, cfg config) *testServer {
	t.Helper()
	return serveTestDatabase(t, newTestDatabase(t, e), cfg)
}

// serveTestDatabase starts the API with cfg on the database of ts.
func serveTestDatabase(t *testing.T, ts *testServer, cfg config) *testServer {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(ts.logs, nil))
	ts.calls = &countingStore{Store: ts.store}
	api := newServer(cfg, logger, ts.calls, ts.usage, ts.clock.now)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	ts.url, ts.api = srv.URL, api
	return ts
}

// newTestInstance starts another instance of the API on the database of
// ts, as a second process behind one load balancer would be: a store, caches
// and key usage of its own, the same keys and clock.
func newTestInstance(t *testing.T, ts *testServer, cfg config) *testServer {
	t.Helper()
	store, err := OpenStore(context.Background(), ts.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	other := &testServer{store: store, engine: ts.engine, db: ts.db, usage: lastused.New(), logs: &syncBuffer{},
		clock: ts.clock, writeKey: ts.writeKey, readKey: ts.readKey}
	return serveTestDatabase(t, other, cfg)
}

// newTestDatabase opens a fresh database of engine e (see newTestDB) with a
// key of each scope, for a test server to serve.
func newTestDatabase(t testing.TB, e engine) *testServer {
	t.Helper()
	return openTestDatabase(t, e, newTestDB(t, e))
}

// openTestDatabase is newTestDatabase on the empty database db of engine e.
func openTestDatabase(t testing.TB, e engine, db string) *testServer {
	t.Helper()
	ctx := context.Background()
	store, err := OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })

	ts := &testServer{store: store, engine: e, db: db, usage: lastused.New(), logs: &syncBuffer{}, clock: newFakeClock(t)}
	if ts.writeKey, _, err = issueKey(ctx, store, APIKey{Name: "writer", Scope: scopeWrite, CreatedAt: ts.clock.now()}); err != nil {
		t.Fatal(err)
	}
	if ts.readKey, _, err = issueKey(ctx, store, APIKey{Name: "reader", Scope: scopeRead, CreatedAt: ts.clock.now()}); err != nil {
		t.Fatal(err)
	}
	return ts
}

// exec runs query on the server's database through a connection of its own:
// see openSQL for the SQL both engines take, and dialect for the rest.
func (ts *testServer) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := openSQL(t, ts.db).Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// dialect picks, of one statement written for each engine, the one e speaks.
func dialect(e engine, sqlite, postgres string) string {
	if e == postgresEngine {
		return postgres
	}
	return sqlite
}

// refuseInserts is SQL that makes every insert into tutorials fail from
// now on, as a trigger a person added would: with a constraint error that is
// not the unique slug's (SQLite's ABORT; PostgreSQL's check_violation, 23514),
// which must not become a 409.
func refuseInserts(e engine) string {
	return dialect(e,
		`CREATE TRIGGER refuse BEFORE INSERT ON tutorials BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END`,
		`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'refused by a trigger' USING ERRCODE = 'check_violation'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON tutorials FOR EACH ROW EXECUTE FUNCTION refuse()`)
}

// refuseWrites makes every write to the tutorials fail from now on, as on a
// database that breaks: SQLite's writer turns read-only; on PostgreSQL a
// trigger refuses every statement that writes, even one that finds no row.
func (ts *testServer) refuseWrites(t testing.TB) {
	t.Helper()
	if ts.engine == sqliteEngine {
		ts.writerPragma(t, "query_only = 1")
		return
	}
	ts.exec(t, `CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'writes refused by a trigger'; END $$;
		CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE OR DELETE ON tutorials
			FOR EACH STATEMENT EXECUTE FUNCTION refuse_writes()`)
}

// writerPragma sets a pragma of the SQLite writer's own connection: see
// sqlitedb.DB.WriterPragma. SQLite only: a test that needs it is about
// SQLite's machinery.
func (ts *testServer) writerPragma(t testing.TB, pragma string) {
	t.Helper()
	if err := ts.store.(*sqliteStore).db.WriterPragma(context.Background(), pragma); err != nil {
		t.Fatal(err)
	}
}

// integrityCheck runs SQLite's PRAGMA integrity_check on the database file
// at path, which reads every page, and fails t unless it answers "ok".
func integrityCheck(t testing.TB, path string) {
	t.Helper()
	var result string
	if err := openSQL(t, path).QueryRow("PRAGMA integrity_check").Scan(&result); err != nil {
		t.Fatal(err)
	}
	if result != "ok" {
		t.Errorf("integrity_check of %s: %s", path, result)
	}
}

// response is what a test received, with its envelope already checked.
type response struct {
	status int
	header http.Header
	body   []byte
	data   json.RawMessage // the envelope's data
	error  string          // the envelope's error, "" when null
}

// request sends a request and checks that the response keeps the envelope
// contract (section 1), whatever the test goes on to look at. headers come
// in pairs: name, value.
func (ts *testServer) request(t *testing.T, method, path, key, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return ts.send(t, req)
}

// send sends req and checks the envelope of the response.
func (ts *testServer) send(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp := response{status: res.StatusCode, header: res.Header, body: b}
	checkEnvelope(t, req.Method, &resp)
	return resp
}

// checkEnvelope holds a response to section 1 of the contract and fills in
// resp.data and resp.error.
func checkEnvelope(t *testing.T, method string, resp *response) {
	t.Helper()
	if resp.status == http.StatusNoContent || resp.status == http.StatusNotModified || method == http.MethodHead {
		if len(resp.body) != 0 {
			t.Errorf("%d to %s has a body: %q", resp.status, method, resp.body)
		}
		return
	}
	if got, want := resp.header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &env); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, resp.body)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range env {
			if !yield(k) {
				return
			}
		}
	})
	if diff := cmp.Diff([]string{"data", "error", "status"}, keys); diff != "" {
		t.Fatalf("envelope keys (-want +got):\n%s\nbody: %s", diff, resp.body)
	}
	var status int
	if err := json.Unmarshal(env["status"], &status); err != nil || status != resp.status {
		t.Errorf("envelope status = %s, HTTP status %d", env["status"], resp.status)
	}
	resp.data = env["data"]
	ok := resp.status < 400
	switch {
	case ok && string(env["error"]) != "null":
		t.Errorf("success %d has error %s", resp.status, env["error"])
	case !ok && string(env["data"]) != "null":
		t.Errorf("failure %d has data %s", resp.status, env["data"])
	case !ok:
		if err := json.Unmarshal(env["error"], &resp.error); err != nil || resp.error == "" {
			t.Errorf("failure %d has error %s, want a message", resp.status, env["error"])
		}
	}
}

// wantError checks a failure's status and message.
func (resp response) wantError(t *testing.T, status int, msg string) {
	t.Helper()
	if resp.status != status || resp.error != msg {
		t.Errorf("got %d %q, want %d %q", resp.status, resp.error, status, msg)
	}
}

// decodeData decodes a successful response's data into a T.
func decodeData[T any](t *testing.T, resp response) T {
	t.Helper()
	var v T
	if resp.status >= 400 {
		t.Fatalf("status %d %q, want success", resp.status, resp.error)
	}
	if err := json.Unmarshal(resp.data, &v); err != nil {
		t.Fatalf("decode data: %v: %s", err, resp.data)
	}
	return v
}

// mustJSON encodes v for a request body.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// create creates a tutorial from fields and returns it.
func (ts *testServer) create(t *testing.T, fields map[string]any) Tutorial {
	t.Helper()
	resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, mustJSON(t, fields))
	if resp.status != http.StatusCreated {
		t.Fatalf("create: %d %q", resp.status, resp.error)
	}
	return decodeData[Tutorial](t, resp)
}

// count returns how many tutorials the list says there are.
func (ts *testServer) count(t *testing.T) int64 {
	t.Helper()
	return decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")).Total
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// mustTime parses an RFC 3339 time.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// checkServerTimes checks that created_at and updated_at were set by the
// server to now, the time of its clock, in whole seconds of UTC.
func checkServerTimes(t *testing.T, got Tutorial, now time.Time) {
	t.Helper()
	for name, v := range map[string]time.Time{"created_at": got.CreatedAt, "updated_at": got.UpdatedAt} {
		if v.Location() != time.UTC || !v.Equal(now) {
			t.Errorf("%s = %v, want %v in UTC", name, v, now)
		}
	}
}
