package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	usage    *keyUsage
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
	other := &testServer{store: store, engine: ts.engine, db: ts.db, usage: newKeyUsage(), logs: &syncBuffer{},
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

	ts := &testServer{store: store, engine: e, db: db, usage: newKeyUsage(), logs: &syncBuffer{}, clock: newFakeClock(t)}
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

// ---- Tutorials: create and get ----

func TestCreateTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		t.Run("all fields are stored and returned", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.clock.advance(1500 * time.Millisecond) // between two seconds: the server keeps whole ones
			now := ts.clock.now().Truncate(time.Second)
			resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{
			"title": "  Flask Authentication ",
			"slug": "flask-authentication",
			"excerpt": "Sessions, hashing and login flows.",
			"content": "Long text.",
			"category": " backend ",
			"difficulty": "intermediate",
			"estimated_time": 12,
			"published_at": "2026-11-24T22:17:33.75+01:00"
		}`)
			if resp.status != http.StatusCreated {
				t.Fatalf("status %d %q, want 201", resp.status, resp.error)
			}
			if got, want := resp.header.Get("Location"), "/api/v1/tutorials/flask-authentication"; got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}
			got := decodeData[Tutorial](t, resp)
			checkServerTimes(t, got, now)
			want := Tutorial{
				TutorialSummary: TutorialSummary{
					ID:            got.ID,
					Title:         "Flask Authentication",
					Slug:          "flask-authentication",
					Excerpt:       "Sessions, hashing and login flows.",
					Category:      "backend",
					Difficulty:    "intermediate",
					EstimatedTime: ptr(int64(12)),
					PublishedAt:   mustTime(t, "2026-11-24T21:17:33Z"),
					CreatedAt:     got.CreatedAt,
					UpdatedAt:     got.UpdatedAt,
				},
				Content: "Long text.",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("created (-want +got):\n%s", diff)
			}
			// And the same comes back from the database.
			stored := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/flask-authentication", ts.readKey, ""))
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored (-want +got):\n%s", diff)
			}
		})

		t.Run("defaults fill what is not sent", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.clock.advance(1500 * time.Millisecond) // between two seconds: the server keeps whole ones
			now := ts.clock.now().Truncate(time.Second)
			got := ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			checkServerTimes(t, got, now)
			want := Tutorial{TutorialSummary: TutorialSummary{
				ID: got.ID, Title: "Go", Slug: "go", Excerpt: "", Category: "backend", Difficulty: "beginner",
				EstimatedTime: nil, PublishedAt: got.CreatedAt, CreatedAt: got.CreatedAt, UpdatedAt: got.CreatedAt,
			}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("the JSON has exactly the fields of the contract", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			var got map[string]any
			json.Unmarshal(ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "").data, &got)
			want := []string{"category", "content", "created_at", "difficulty", "estimated_time", "excerpt",
				"id", "published_at", "slug", "title", "updated_at"}
			if diff := cmp.Diff(want, slices.Sorted(mapKeys(got))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if got["estimated_time"] != nil {
				t.Errorf("estimated_time = %v, want null", got["estimated_time"])
			}
		})

		t.Run("duplicate slug is 409 and writes nothing", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title": "Other", "slug": "go"}`)
			resp.wantError(t, http.StatusConflict, "Slug already exists")
			if n := ts.count(t); n != 1 {
				t.Errorf("%d tutorials, want 1", n)
			}
		})
	})
}

// mapKeys yields the keys of m.
func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestUnicodeRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		text := "Ünïcödé ✓ 日本語 🚀 \"quoted\" <b>&amp;</b> \\ \u2028 tab\tend"
		created := ts.create(t, map[string]any{
			"title": "Grüße, 世界 🌍", "slug": "unicode", "excerpt": text, "content": text + "\n" + text,
			"category": "ρυθμίσεις",
		})
		got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/unicode", ts.readKey, ""))
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("(-created +got):\n%s", diff)
		}
		want := []string{"Grüße, 世界 🌍", text, text + "\n" + text, "ρυθμίσεις"}
		if diff := cmp.Diff(want, []string{got.Title, got.Excerpt, got.Content, got.Category}); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestGetTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		created := ts.create(t, map[string]any{"title": "Go", "slug": "go"})

		got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		for _, slug := range []string{"missing", "Not-A-Slug", strings.Repeat("a", 101), "%20"} {
			ts.request(t, "GET", "/api/v1/tutorials/"+slug, ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		}
	})
}

// ---- Bad input (section 5 and the rules of section 3) ----

func TestCreateTutorialBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Taken", "slug": "taken"})

		tests := []struct {
			name        string
			contentType string
			body        string
			status      int
			msg         string
		}{
			{"wrong content type", "text/plain", `{"title":"a","slug":"a"}`, 415, "Content-Type must be application/json"},
			{"form content type, as curl -d sends", "application/x-www-form-urlencoded", `{"title":"a","slug":"a"}`, 415, "Content-Type must be application/json"},
			{"no content type", "", `{"title":"a","slug":"a"}`, 415, "Content-Type must be application/json"},
			{"charset parameter is fine", "application/json; charset=utf-8", `{"title":"a","slug":"a-b"}`, 201, ""},
			{"empty body", "application/json", ``, 400, "Request body must be JSON"},
			{"not JSON", "application/json", `{"title":`, 400, "Request body must be JSON"},
			{"two JSON values", "application/json", `{} {}`, 400, "Request body must be JSON"},
			{"array", "application/json", `[{"title":"a","slug":"a"}]`, 400, "Request body must be a JSON object, not an array"},
			{"string", "application/json", `"title"`, 400, "Request body must be a JSON object, not a string"},
			{"null", "application/json", `null`, 400, "Request body must be a JSON object, not null"},
			{"number", "application/json", `12`, 400, "Request body must be a JSON object, not a number"},
			{"title missing", "application/json", `{"slug":"a"}`, 400, "title is required"},
			{"title blank", "application/json", `{"title":"   ","slug":"a"}`, 400, "title is required"},
			{"slug missing", "application/json", `{"title":"a"}`, 400, "slug is required"},
			{"slug blank", "application/json", `{"title":"a","slug":" "}`, 400, "slug is required"},
			{"both missing", "application/json", `{}`, 400, "title is required; slug is required"},
			{"title wrong type", "application/json", `{"title":5,"slug":"a"}`, 400, "title must be a string"},
			{"title null", "application/json", `{"title":null,"slug":"a"}`, 400, "title must be a string"},
			{"title too long", "application/json", mustJSON(t, map[string]any{"title": strings.Repeat("é", 201), "slug": "a"}), 400, "title must be at most 200 characters"},
			{"title of 200 characters", "application/json", mustJSON(t, map[string]any{"title": strings.Repeat("é", 200), "slug": "t200"}), 201, ""},
			{"slug wrong type", "application/json", `{"title":"a","slug":["a"]}`, 400, "slug must be a string"},
			{"slug with capitals", "application/json", `{"title":"a","slug":"Go"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug with double hyphen", "application/json", `{"title":"a","slug":"a--b"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug with leading hyphen", "application/json", `{"title":"a","slug":"-a"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug with a space", "application/json", `{"title":"a","slug":" a"}`, 400, "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial"},
			{"slug too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": strings.Repeat("a", 101)}), 400, "slug must be at most 100 characters"},
			{"slug taken", "application/json", `{"title":"a","slug":"taken"}`, 409, "Slug already exists"},
			{"excerpt wrong type", "application/json", `{"title":"a","slug":"a","excerpt":false}`, 400, "excerpt must be a string"},
			{"excerpt too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": "a", "excerpt": strings.Repeat("x", 501)}), 400, "excerpt must be at most 500 characters"},
			{"content wrong type", "application/json", `{"title":"a","slug":"a","content":{}}`, 400, "content must be a string"},
			{"content too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": "a", "content": strings.Repeat("x", 200_001)}), 400, "content must be at most 200000 characters"},
			{"category blank", "application/json", `{"title":"a","slug":"a","category":"  "}`, 400, "category must be 1 to 50 characters"},
			{"category too long", "application/json", mustJSON(t, map[string]any{"title": "a", "slug": "a", "category": strings.Repeat("c", 51)}), 400, "category must be 1 to 50 characters"},
			{"category wrong type", "application/json", `{"title":"a","slug":"a","category":1}`, 400, "category must be a string"},
			{"difficulty unknown", "application/json", `{"title":"a","slug":"a","difficulty":"expert"}`, 400, "difficulty must be one of beginner, intermediate, advanced"},
			{"difficulty wrong case", "application/json", `{"title":"a","slug":"a","difficulty":"Beginner"}`, 400, "difficulty must be one of beginner, intermediate, advanced"},
			{"difficulty wrong type", "application/json", `{"title":"a","slug":"a","difficulty":null}`, 400, "difficulty must be a string"},
			{"estimated_time fraction", "application/json", `{"title":"a","slug":"a","estimated_time":1.5}`, 400, "estimated_time must be an integer or null"},
			{"estimated_time string", "application/json", `{"title":"a","slug":"a","estimated_time":"12"}`, 400, "estimated_time must be an integer or null"},
			{"estimated_time negative", "application/json", `{"title":"a","slug":"a","estimated_time":-1}`, 400, "estimated_time must be between 0 and 100000 minutes"},
			{"estimated_time too large", "application/json", `{"title":"a","slug":"a","estimated_time":100001}`, 400, "estimated_time must be between 0 and 100000 minutes"},
			{"estimated_time past int64", "application/json", `{"title":"a","slug":"a","estimated_time":99999999999999999999}`, 400, "estimated_time must be an integer or null"},
			{"published_at not RFC 3339", "application/json", `{"title":"a","slug":"a","published_at":"2026-11-24 21:17:33"}`, 400, "published_at must be an RFC 3339 time, like 2026-11-24T21:17:33Z"},
			{"published_at after 9999 in UTC", "application/json", `{"title":"a","slug":"a","published_at":"9999-12-31T23:59:59-01:00"}`, 400, "published_at must be between the years 0000 and 9999 in UTC"},
			{"published_at before 0000 in UTC", "application/json", `{"title":"a","slug":"a","published_at":"0000-01-01T00:00:00+01:00"}`, 400, "published_at must be between the years 0000 and 9999 in UTC"},
			{"published_at wrong type", "application/json", `{"title":"a","slug":"a","published_at":1700000000}`, 400, "published_at must be a string"},
			{"published_at offset +24:00", "application/json", `{"title":"a","slug":"a","published_at":"2026-11-24T21:17:33+24:00"}`, 400, "published_at must have a UTC offset between -23:59 and +23:59"},
			{"published_at offset -24:00", "application/json", `{"title":"a","slug":"a","published_at":"2026-11-24T21:17:33-24:00"}`, 400, "published_at must have a UTC offset between -23:59 and +23:59"},
			{"published_at offset +23:59", "application/json", `{"title":"a","slug":"offset","published_at":"2026-11-24T21:17:33+23:59"}`, 201, ""},
			{"bytes that are not UTF-8 in a title", "application/json", "{\"title\":\"a\xff\xfeb\",\"slug\":\"a\"}", 400, "Request body must be valid UTF-8"},
			{"an overlong encoding in a title", "application/json", "{\"title\":\"a\xc0\xafb\",\"slug\":\"a\"}", 400, "Request body must be valid UTF-8"},
			{"an encoded surrogate in a title", "application/json", "{\"title\":\"a\xed\xa0\x80b\",\"slug\":\"a\"}", 400, "Request body must be valid UTF-8"},
			{"an escaped lone high surrogate", "application/json", `{"title":"a\ud800b","slug":"a"}`, 400, "Request body must be valid UTF-8"},
			{"an escaped lone low surrogate", "application/json", `{"title":"a\udc00b","slug":"a"}`, 400, "Request body must be valid UTF-8"},
			{"a high surrogate before a non-surrogate", "application/json", `{"title":"a\ud800\u0041","slug":"a"}`, 400, "Request body must be valid UTF-8"},
			{"an escaped backslash before u", "application/json", `{"title":"a\\ud800","slug":"backslash"}`, 201, ""},
			{"an escaped surrogate pair", "application/json", `{"title":"\ud83d\ude00","slug":"pair"}`, 201, ""},
			{"unknown field", "application/json", `{"title":"a","slug":"a","author":"me"}`, 400, `unknown field "author"`},
			{"field names are case-sensitive", "application/json", `{"Title":"a","slug":"a"}`, 400, `title is required; unknown field "Title"`},
			{"id is read-only", "application/json", `{"id":1,"title":"a","slug":"a"}`, 400, "id is read-only"},
			{"created_at is read-only", "application/json", `{"created_at":"2026-11-24T21:17:33Z","title":"a","slug":"a"}`, 400, "created_at is read-only"},
			{"updated_at is read-only", "application/json", `{"updated_at":"2026-11-24T21:17:33Z","title":"a","slug":"a"}`, 400, "updated_at is read-only"},
			{"every problem at once", "application/json", `{"title":"","slug":"A","difficulty":"hard","estimated_time":-5,"id":2,"zz":1,"aa":2}`, 400,
				"title is required; slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial; " +
					"difficulty must be one of beginner, intermediate, advanced; estimated_time must be between 0 and 100000 minutes; " +
					`id is read-only; unknown field "aa"; unknown field "zz"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := ts.count(t)
				resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, tt.body, "Content-Type", tt.contentType)
				if tt.status == http.StatusCreated {
					if resp.status != tt.status {
						t.Fatalf("got %d %q, want 201", resp.status, resp.error)
					}
					return
				}
				resp.wantError(t, tt.status, tt.msg)
				if after := ts.count(t); after != before {
					t.Errorf("a failed request changed the count from %d to %d", before, after)
				}
			})
		}
	})
}

func TestBodyTooLarge(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		big := `{"title":"a","slug":"a","content":"` + strings.Repeat("x", maxBodyBytes) + `"}`

		t.Run("with Content-Length", func(t *testing.T) {
			ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, big).wantError(t, http.StatusRequestEntityTooLarge, "Request body too large")
		})
		t.Run("chunked, length unknown", func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.url+"/api/v1/tutorials", io.MultiReader(strings.NewReader(big)))
			req.Header.Set("Authorization", "Bearer "+ts.writeKey)
			req.Header.Set("Content-Type", "application/json")
			if req.ContentLength != 0 {
				t.Fatalf("ContentLength = %d: the request would not be chunked", req.ContentLength)
			}
			req.ContentLength = -1
			ts.send(t, req).wantError(t, http.StatusRequestEntityTooLarge, "Request body too large")
		})
		t.Run("just under the limit is read", func(t *testing.T) {
			// Over the content rule, under the byte limit: a 400, not a 413.
			body := `{"title":"a","slug":"a","content":"` + strings.Repeat("x", maxBodyBytes-100) + `"}`
			ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body).wantError(t, http.StatusBadRequest, "content must be at most 200000 characters")
		})
		if n := ts.count(t); n != 0 {
			t.Errorf("%d tutorials, want 0", n)
		}
	})
}

// ---- Tutorials: the list ----

// seed creates n tutorials with slugs t000, t001, ... all published at the
// same second, so that only the tie-breaker orders them.
func (ts *testServer) seed(t *testing.T, n int, fields func(i int) map[string]any) []Tutorial {
	t.Helper()
	var out []Tutorial
	for i := range n {
		f := map[string]any{"title": fmt.Sprintf("Tutorial %03d", i), "slug": fmt.Sprintf("t%03d", i),
			"content": "body", "published_at": "2026-01-01T00:00:00Z"}
		if fields != nil {
			for k, v := range fields(i) {
				f[k] = v
			}
		}
		out = append(out, ts.create(t, f))
	}
	return out
}

// slugs lists the slugs of a page.
func slugs(list []TutorialSummary) []string {
	s := []string{}
	for _, t := range list {
		s = append(s, t.Slug)
	}
	return s
}

func TestListTutorials(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		all := ts.seed(t, 7, func(i int) map[string]any {
			return map[string]any{
				// Two share each published_at, to test the tie-breaker.
				"published_at": fmt.Sprintf("2026-01-0%dT00:00:00Z", 1+i/2),
				"category":     []string{"backend", "frontend"}[i%2],
				"difficulty":   difficulties[i%3],
				"title":        []string{"b", "a", "c", "a", "d", "b", "e"}[i],
			}
		})

		t.Run("items carry every field but content", func(t *testing.T) {
			resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
			var page struct {
				Tutorials []map[string]any `json:"tutorials"`
			}
			json.Unmarshal(resp.data, &page)
			want := []string{"category", "created_at", "difficulty", "estimated_time", "excerpt",
				"id", "published_at", "slug", "title", "updated_at"}
			if diff := cmp.Diff(want, slices.Sorted(mapKeys(page.Tutorials[0]))); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})

		t.Run("the first item is whole", func(t *testing.T) {
			page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials?per_page=1", ts.readKey, ""))
			want := tutorialPage{Tutorials: []TutorialSummary{all[6].TutorialSummary}, Page: 1, PerPage: 1, Total: 7, TotalRelation: "eq", TotalPages: 7}
			if diff := cmp.Diff(want, page); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		tests := []struct {
			query string
			want  tutorialPage
			slugs []string
		}{
			{"", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
			{"?sort=published_at", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t001", "t000", "t003", "t002", "t005", "t004", "t006"}},
			{"?sort=title", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t003", "t001", "t005", "t000", "t002", "t004", "t006"}},
			{"?sort=-title", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t004", "t002", "t005", "t000", "t003", "t001"}},
			{"?per_page=3", tutorialPage{Page: 1, PerPage: 3, Total: 7, TotalRelation: "eq", TotalPages: 3},
				[]string{"t006", "t005", "t004"}},
			{"?per_page=3&page=3", tutorialPage{Page: 3, PerPage: 3, Total: 7, TotalRelation: "eq", TotalPages: 3},
				[]string{"t000"}},
			{"?per_page=3&page=4", tutorialPage{Page: 4, PerPage: 3, Total: 7, TotalRelation: "eq", TotalPages: 3},
				[]string{}},
			{"?page=99999999999999999999", tutorialPage{Page: 1<<63 - 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{}},
			{"?per_page=101", tutorialPage{Page: 1, PerPage: 100, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
			{"?per_page=99999999999999999999", tutorialPage{Page: 1, PerPage: 100, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
			{"?category=frontend", tutorialPage{Page: 1, PerPage: 20, Total: 3, TotalRelation: "eq", TotalPages: 1},
				[]string{"t005", "t003", "t001"}},
			{"?category=front", tutorialPage{Page: 1, PerPage: 20, Total: 0, TotalRelation: "eq", TotalPages: 0},
				[]string{}},
			{"?difficulty=advanced", tutorialPage{Page: 1, PerPage: 20, Total: 2, TotalRelation: "eq", TotalPages: 1},
				[]string{"t005", "t002"}},
			{"?difficulty=beginner&category=backend&sort=title", tutorialPage{Page: 1, PerPage: 20, Total: 2, TotalRelation: "eq", TotalPages: 1},
				[]string{"t000", "t006"}},
			{"?unknown=1&q2=x", tutorialPage{Page: 1, PerPage: 20, Total: 7, TotalRelation: "eq", TotalPages: 1},
				[]string{"t006", "t005", "t004", "t003", "t002", "t001", "t000"}},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				got := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials"+tt.query, ts.readKey, ""))
				gotSlugs := slugs(got.Tutorials)
				got.Tutorials = nil
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("page (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.slugs, gotSlugs); diff != "" {
					t.Errorf("slugs (-want +got):\n%s", diff)
				}
			})
		}
	})
}

func TestListEmptyIsAnEmptyArray(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")
		if want := `{"tutorials":[],"page":1,"per_page":20,"total":0,"total_relation":"eq","total_pages":0}`; string(resp.data) != want {
			t.Errorf("data = %s, want %s", resp.data, want)
		}
	})
}

func TestListBadQuery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		tests := []struct {
			query string
			msg   string
		}{
			{"page=0", "page must be an integer of at least 1"},
			{"page=-1", "page must be an integer of at least 1"},
			{"page=-99999999999999999999", "page must be an integer of at least 1"},
			{"page=two", "page must be an integer of at least 1"},
			{"page=99999999999999999999x", "page must be an integer of at least 1"},
			{"per_page=+99999999999999999999-", "per_page must be an integer of at least 1"},
			{"page=1.5", "page must be an integer of at least 1"},
			{"per_page=0", "per_page must be an integer of at least 1"},
			{"per_page=x", "per_page must be an integer of at least 1"},
			{"difficulty=expert", "difficulty must be one of beginner, intermediate, advanced"},
			{"sort=id", "sort must be one of -published_at, published_at, title, -title"},
			{"sort=title%3BDROP%20TABLE%20tutorials", "sort must be one of -published_at, published_at, title, -title"},
			{"sort=-published_at;DROP", `query parameter "sort" cannot be read: a ";" or a bad "%" escape`},
			{"page=2&sort=title;", `query parameter "sort" cannot be read: a ";" or a bad "%" escape`},
			{"q=%zz", `query parameter "q" cannot be read: a ";" or a bad "%" escape`},
			{"x=%zz&page=2", `query parameter "x" cannot be read: a ";" or a bad "%" escape`},
			{"%zz=1", `the query string cannot be read: a ";" or a bad "%" escape`},
			{"a;b=1", `the query string cannot be read: a ";" or a bad "%" escape`},
			{"page=0&per_page=0&sort=x", "page must be an integer of at least 1; per_page must be an integer of at least 1; sort must be one of -published_at, published_at, title, -title"},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				ts.request(t, "GET", "/api/v1/tutorials?"+tt.query, ts.readKey, "").wantError(t, http.StatusBadRequest, tt.msg)
			})
		}
	})
}

func TestPagingThroughTiesNeverRepeatsOrSkips(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		// 25 tutorials with the same published_at and the same title: every sort
		// key ties, so the order rests on id alone.
		created := ts.seed(t, 25, func(int) map[string]any { return map[string]any{"title": "Same"} })
		var want []string
		for i := len(created) - 1; i >= 0; i-- {
			want = append(want, created[i].Slug) // id descending
		}
		for _, sort := range sortNames {
			var got []string
			for page := 1; page <= 9; page++ {
				p := decodeData[tutorialPage](t, ts.request(t, "GET", fmt.Sprintf("/api/v1/tutorials?sort=%s&per_page=3&page=%d", sort, page), ts.readKey, ""))
				got = append(got, slugs(p.Tutorials)...)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("sort=%s: pages (-want +got):\n%s", sort, diff)
			}
		}
	})
}

// ---- Tutorials: change and delete ----

func TestPatchTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		base := map[string]any{"title": "Go", "slug": "go", "excerpt": "e", "content": "c", "category": "lang",
			"difficulty": "advanced", "estimated_time": 5, "published_at": "2026-01-01T00:00:00Z"}

		t.Run("changes only the fields sent", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, base)
			ts.clock.advance(time.Minute)
			got := decodeData[Tutorial](t, ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey,
				`{"excerpt": "new excerpt", "estimated_time": null}`))
			want := created
			want.Excerpt = "new excerpt"
			want.EstimatedTime = nil
			want.UpdatedAt = created.UpdatedAt.Add(time.Minute) // moved forward with the clock
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("every field can change, the slug too", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, base)
			got := decodeData[Tutorial](t, ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, `{
			"title": " Rust ", "slug": "rust", "excerpt": "", "content": "new", "category": "systems",
			"difficulty": "beginner", "estimated_time": 0, "published_at": "2025-06-01T12:00:00Z"}`))
			want := Tutorial{TutorialSummary: TutorialSummary{ID: created.ID, Title: "Rust", Slug: "rust", Excerpt: "",
				Category: "systems", Difficulty: "beginner", EstimatedTime: ptr(int64(0)),
				PublishedAt: mustTime(t, "2025-06-01T12:00:00Z"), CreatedAt: created.CreatedAt, UpdatedAt: got.UpdatedAt},
				Content: "new"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
			if got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/rust", ts.readKey, "")); got.ID != created.ID {
				t.Errorf("id %d at the new slug, want %d", got.ID, created.ID)
			}
		})

		t.Run("bad input", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, base)
			ts.create(t, map[string]any{"title": "Other", "slug": "other"})
			tests := []struct {
				name, body string
				status     int
				msg        string
			}{
				{"slug taken", `{"slug": "other"}`, 409, "Slug already exists"},
				{"blank title", `{"title": " "}`, 400, "title is required"},
				{"blank slug", `{"slug": ""}`, 400, "slug is required"},
				{"null title", `{"title": null}`, 400, "title must be a string"},
				{"read-only field", `{"id": 9}`, 400, "id is read-only"},
				{"unknown field", `{"tags": []}`, 400, `unknown field "tags"`},
				{"several", `{"difficulty": "x", "category": ""}`, 400, "category must be 1 to 50 characters; difficulty must be one of beginner, intermediate, advanced"},
				{"not an object", `[]`, 400, "Request body must be a JSON object, not an array"},
				{"empty body", ``, 400, "Request body must be JSON"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, tt.body).wantError(t, tt.status, tt.msg)
				})
			}
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("failed patches changed the tutorial (-want +got):\n%s", diff)
			}
		})

		t.Run("missing tutorial is 404", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.request(t, "PATCH", "/api/v1/tutorials/nope", ts.writeKey, `{"title": "x"}`).wantError(t, http.StatusNotFound, "Tutorial not found")
		})
	})
}

func TestReplaceTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		full := map[string]any{"title": "Go", "slug": "go", "excerpt": "e", "content": "c", "category": "lang",
			"difficulty": "advanced", "estimated_time": 5, "published_at": "2026-01-01T00:00:00Z"}

		t.Run("fields not sent go back to their defaults", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, full)
			got := decodeData[Tutorial](t, ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "Go 2", "slug": "go-2"}`))
			want := Tutorial{TutorialSummary: TutorialSummary{ID: created.ID, Title: "Go 2", Slug: "go-2", Excerpt: "",
				Category: "backend", Difficulty: "beginner", EstimatedTime: nil,
				PublishedAt: created.CreatedAt, CreatedAt: created.CreatedAt, UpdatedAt: got.UpdatedAt}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("every field is written", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			body := maps(full, map[string]any{"title": "Again", "published_at": "2024-02-29T23:59:59Z"})
			got := decodeData[Tutorial](t, ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, mustJSON(t, body)))
			want := Tutorial{TutorialSummary: TutorialSummary{ID: created.ID, Title: "Again", Slug: "go", Excerpt: "e",
				Category: "lang", Difficulty: "advanced", EstimatedTime: ptr(int64(5)),
				PublishedAt: mustTime(t, "2024-02-29T23:59:59Z"), CreatedAt: created.CreatedAt, UpdatedAt: got.UpdatedAt},
				Content: "c"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("bad input and conflicts", func(t *testing.T) {
			ts := newTestServer(t, e)
			created := ts.create(t, full)
			ts.create(t, map[string]any{"title": "Other", "slug": "other"})
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "x"}`).wantError(t, http.StatusBadRequest, "slug is required")
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"slug": "go"}`).wantError(t, http.StatusBadRequest, "title is required")
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "x", "slug": "other"}`).wantError(t, http.StatusConflict, "Slug already exists")
			ts.request(t, "PUT", "/api/v1/tutorials/go", ts.writeKey, `{"title": "x", "slug": "go"}`, "Content-Type", "text/plain").
				wantError(t, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("failed PUTs changed the tutorial (-want +got):\n%s", diff)
			}
		})

		t.Run("PUT does not create", func(t *testing.T) {
			ts := newTestServer(t, e)
			ts.request(t, "PUT", "/api/v1/tutorials/new", ts.writeKey, `{"title": "x", "slug": "new"}`).wantError(t, http.StatusNotFound, "Tutorial not found")
			if n := ts.count(t); n != 0 {
				t.Errorf("%d tutorials, want 0", n)
			}
		})
	})
}

// maps returns a copy of a with b's entries over it.
func maps(a, b map[string]any) map[string]any {
	m := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func TestDeleteTutorial(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		ts.create(t, map[string]any{"title": "Keep", "slug": "keep"})

		resp := ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, "")
		if resp.status != http.StatusNoContent {
			t.Fatalf("status %d %q, want 204", resp.status, resp.error)
		}
		ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		ts.request(t, "DELETE", "/api/v1/tutorials/go", ts.writeKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		page := decodeData[tutorialPage](t, ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, ""))
		if diff := cmp.Diff([]string{"keep"}, slugs(page.Tutorials)); diff != "" {
			t.Errorf("left (-want +got):\n%s", diff)
		}
	})
}

// Deleting the newest tutorial and creating another used to give the new
// one the deleted one's id: SQLite's default is the largest id left plus
// one. A client that kept the old id would then find the wrong tutorial.
func TestIDsAreNeverReused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "First", "slug": "first"})
		newest := ts.create(t, map[string]any{"title": "Newest", "slug": "newest"})
		if resp := ts.request(t, "DELETE", "/api/v1/tutorials/newest", ts.writeKey, ""); resp.status != http.StatusNoContent {
			t.Fatalf("DELETE: %d %q", resp.status, resp.error)
		}
		if next := ts.create(t, map[string]any{"title": "Next", "slug": "next"}); next.ID <= newest.ID {
			t.Errorf("a tutorial created after deleting id %d has id %d: ids must never be reused", newest.ID, next.ID)
		}
	})
}

// ---- Authentication ----

func TestAuthentication(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		revoked, rec, err := issueKey(context.Background(), ts.store, APIKey{Name: "old", Scope: scopeWrite, CreatedAt: ts.clock.now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.store.RevokeKey(context.Background(), rec.ID); err != nil {
			t.Fatal(err)
		}

		const (
			challenge = `Bearer realm="api"`
			invalid   = `Bearer realm="api", error="invalid_token"`
		)
		tests := []struct {
			name          string
			authorization string // "" sends no header
			status        int
			msg           string
			wwwAuth       string
		}{
			{"no header", "", 401, "Missing Authorization header", challenge},
			{"empty header", " ", 401, "Missing Authorization header", challenge},
			{"basic scheme", "Basic dXNlcjpwYXNz", 401, "Authorization header must be: Bearer <key>", challenge},
			{"scheme alone", "Bearer", 401, "Authorization header must be: Bearer <key>", challenge},
			{"scheme and spaces", "Bearer   ", 401, "Authorization header must be: Bearer <key>", challenge},
			{"two tokens", "Bearer " + ts.writeKey + " " + ts.writeKey, 401, "Authorization header must be: Bearer <key>", challenge},
			{"tab after the scheme", "Bearer \t" + ts.writeKey, 401, "Authorization header must be: Bearer <key>", challenge},
			{"no-break space after the key", "Bearer " + ts.writeKey + "\u00a0", 401, "Invalid or inactive API key", invalid},
			{"bare key", ts.writeKey, 401, "Authorization header must be: Bearer <key>", challenge},
			{"unknown key", "Bearer tut_" + strings.Repeat("0", 64), 401, "Invalid or inactive API key", invalid},
			{"not a key at all", "Bearer hunter2", 401, "Invalid or inactive API key", invalid},
			{"key in capitals", "Bearer " + strings.ToUpper(ts.writeKey), 401, "Invalid or inactive API key", invalid},
			{"revoked key", "Bearer " + revoked, 401, "Invalid or inactive API key", invalid},
			{"scheme in lower case", "bearer " + ts.readKey, 200, "", ""},
			{"scheme in capitals", "BEARER " + ts.readKey, 200, "", ""},
			{"read key", "Bearer " + ts.readKey, 200, "", ""},
			{"write key", "Bearer " + ts.writeKey, 200, "", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, path := range []string{"/api/v1/tutorials", "/api/v1/tutorials/go"} {
					resp := ts.request(t, "GET", path, "", "", "Authorization", tt.authorization)
					if tt.status == http.StatusOK {
						if resp.status != http.StatusOK {
							t.Errorf("GET %s: %d %q, want 200", path, resp.status, resp.error)
						}
						continue
					}
					resp.wantError(t, tt.status, tt.msg)
					if got := resp.header.Get("WWW-Authenticate"); got != tt.wwwAuth {
						t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wwwAuth)
					}
				}
			})
		}

		t.Run("every route needs a key", func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/api/v1/tutorials", ""},
				{"GET", "/api/v1/tutorials/go", ""},
				{"POST", "/api/v1/tutorials", `{"title":"a","slug":"a"}`},
				{"PATCH", "/api/v1/tutorials/go", `{"title":"a"}`},
				{"PUT", "/api/v1/tutorials/go", `{"title":"a","slug":"go"}`},
				{"DELETE", "/api/v1/tutorials/go", ""},
			} {
				ts.request(t, r.method, r.path, "", r.body).wantError(t, http.StatusUnauthorized, "Missing Authorization header")
			}
		})

		t.Run("a read key cannot write", func(t *testing.T) {
			for _, r := range []struct{ method, path, body string }{
				{"POST", "/api/v1/tutorials", `{"title":"a","slug":"a"}`},
				{"PATCH", "/api/v1/tutorials/go", `{"title":"a"}`},
				{"PUT", "/api/v1/tutorials/go", `{"title":"a","slug":"go"}`},
				{"DELETE", "/api/v1/tutorials/go", ""},
			} {
				ts.request(t, r.method, r.path, ts.readKey, r.body).wantError(t, http.StatusForbidden, "This API key is read-only")
			}
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if got.Title != "Go" || ts.count(t) != 1 {
				t.Errorf("a read key changed something: %+v, %d tutorials", got, ts.count(t))
			}
		})
	})
}

func TestKeysAndBodiesNeverReachTheLog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Secret title", "slug": "go", "content": "secret content"})
		ts.request(t, "GET", "/api/v1/tutorials?category=private-query", ts.writeKey, "")
		ts.request(t, "GET", "/api/v1/tutorials", "tut_"+strings.Repeat("a", 64), "")
		logs := ts.logs.String()
		for _, secret := range []string{ts.writeKey, ts.writeKey[len(keyPrefix):], strings.Repeat("a", 64), "Bearer",
			"Secret title", "secret content", "private-query"} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds %q:\n%s", secret, logs)
			}
		}
		if !strings.Contains(logs, "path=/api/v1/tutorials status=201") {
			t.Errorf("the log has no line for the create:\n%s", logs)
		}
	})
}

func TestLastUsedIsKeptInMemoryUntilSaved(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ctx := context.Background()
		ts.clock.advance(time.Hour)
		used := ts.clock.now()
		ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "")

		// lastUsed maps each key's name to its last_used_at; zero for never.
		lastUsed := func() map[string]time.Time {
			keys, err := ts.store.APIKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]time.Time{}
			for _, k := range keys {
				seen[k.Name] = k.LastUsedAt
			}
			return seen
		}
		if diff := cmp.Diff(map[string]time.Time{"writer": {}, "reader": {}}, lastUsed()); diff != "" {
			t.Errorf("before saving, a request wrote last_used_at (-want +got):\n%s", diff)
		}
		if err := ts.usage.save(ctx, ts.store); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]time.Time{"writer": {}, "reader": used}, lastUsed()); diff != "" {
			t.Errorf("after saving (-want +got):\n%s", diff)
		}
	})
}

// ---- Everything else the server answers ----

func TestUnroutedRequestsGetTheEnvelope(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		tests := []struct {
			method, path string
			status       int
			msg, allow   string
		}{
			{"GET", "/", 404, "Not found", ""},
			{"GET", "/api/v1/nope", 404, "Not found", ""},
			{"GET", "/api/v1/tutorials/", 404, "Not found", ""},
			{"GET", "/api/v1/tutorials/go/extra", 404, "Not found", ""},
			{"GET", "/api/v2/tutorials", 404, "Not found", ""},
			{"GET", "/api//v1/tutorials", 404, "Not found", ""},
			{"GET", "/api/v1/../v1/tutorials", 404, "Not found", ""},
			{"POST", "/api//v1/tutorials", 404, "Not found", ""},
			{"HEAD", "/api/v1/./tutorials", 404, "", ""},
			{"DELETE", "/api/v1/tutorials", 405, "Method not allowed", "GET, HEAD, POST"},
			{"POST", "/api/v1/tutorials/go", 405, "Method not allowed", "GET, HEAD, PUT, PATCH, DELETE"},
			{"OPTIONS", "/api/v1/tutorials", 405, "Method not allowed", "GET, HEAD, POST"},
			{"POST", "/healthz", 405, "Method not allowed", "GET, HEAD"},
		}
		for _, tt := range tests {
			t.Run(tt.method+" "+tt.path, func(t *testing.T) {
				req, err := http.NewRequest(tt.method, ts.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.URL.Opaque = tt.path // sent as it is, not cleaned by the client
				req.Header.Set("Authorization", "Bearer "+ts.writeKey)
				resp := ts.send(t, req)
				resp.wantError(t, tt.status, tt.msg)
				if got := resp.header.Get("Allow"); got != tt.allow {
					t.Errorf("Allow = %q, want %q", got, tt.allow)
				}
			})
		}
	})
}

func TestHeadHasNoBody(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		for _, path := range []string{"/api/v1/tutorials", "/api/v1/tutorials/go", "/healthz"} {
			// request checks that HEAD has no body.
			if resp := ts.request(t, "HEAD", path, ts.readKey, ""); resp.status != http.StatusOK {
				t.Errorf("HEAD %s: %d, want 200", path, resp.status)
			}
		}
	})
}

func TestPanicBecomesA500Envelope(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	boom := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom at a secret place") })
	srv := httptest.NewServer(logRequests(logger, recoverPanics(logger, boom)))
	defer srv.Close()

	ts := &testServer{url: srv.URL}
	resp := ts.request(t, "GET", "/anything", "", "")
	resp.wantError(t, http.StatusInternalServerError, "Internal server error")
	if strings.Contains(string(resp.body), "boom") || strings.Contains(string(resp.body), "goroutine") {
		t.Errorf("the response shows the panic: %s", resp.body)
	}
	if !strings.Contains(logs.String(), "boom at a secret place") || !strings.Contains(logs.String(), "api_test.go") {
		t.Errorf("the log lacks the panic and its stack:\n%s", logs)
	}
}

func TestDatabaseFailureIs500NotConflict(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		// From now on every insert fails with a constraint error that is not the
		// unique slug's: only the engine's own code for that may become a 409.
		ts.exec(t, refuseInserts(e))
		resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title": "Go", "slug": "go"}`)
		resp.wantError(t, http.StatusInternalServerError, "Internal server error")
		if strings.Contains(string(resp.body), "sql") {
			t.Errorf("the response leaks the driver error: %s", resp.body)
		}
		if logs := ts.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "refused by a trigger") {
			t.Errorf("the log does not name the cause:\n%s", logs)
		}
	})
}

func TestHealthz(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		resp := ts.request(t, "GET", "/healthz", "", "")
		if got := decodeData[map[string]string](t, resp); !cmp.Equal(got, map[string]string{"status": "ok"}) {
			t.Errorf("data = %v", got)
		}
		ts.store.Close()
		ts.request(t, "GET", "/healthz", "", "").wantError(t, http.StatusServiceUnavailable, "Database unavailable")
	})
}

func TestRequestID(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		if got := ts.request(t, "GET", "/healthz", "", "", "X-Request-ID", "abc-123").header.Get("X-Request-ID"); got != "abc-123" {
			t.Errorf("X-Request-ID = %q, want the client's abc-123", got)
		}
		for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "new\u00e9"} {
			got := ts.request(t, "GET", "/healthz", "", "", "X-Request-ID", bad).header.Get("X-Request-ID")
			if len(got) != 16 || got == bad {
				t.Errorf("for %q: X-Request-ID = %q, want a new 16-character id", bad, got)
			}
		}
	})
}

func TestClientThatHangsUpIsNotAnError(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	hungUp := make(chan struct{})
	// A handler whose client goes away while its query runs, as a store
	// call reports it: with the request's context.Canceled.
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(hungUp)
		<-r.Context().Done()
		writeError(w, r, r.Context().Err())
	})
	// The log line is written after the handler returns, once the client
	// is gone: logged says when.
	logged := make(chan struct{})
	h := logRequests(logger, slow)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(logged)
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	go func() { <-hungUp; cancel() }()
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	<-logged
	if line := logs.String(); !strings.Contains(line, "level=INFO") || !strings.Contains(line, "context canceled") {
		t.Errorf("want an INFO line naming the cancellation, got:\n%s", line)
	}
}

func TestReadOnlyFieldsAreReportedInOneOrder(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		body := `{"updated_at":"x","created_at":"y","id":1,"title":"a","slug":"a"}`
		for range 10 { // map order changes from run to run; the message must not
			ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body).
				wantError(t, http.StatusBadRequest, "id is read-only; created_at is read-only; updated_at is read-only")
		}
	})
}
