package main

// The proofs of issue 3 that run in the test process: concurrent writers,
// slow clients, a database that cannot be written, and the limits and
// headers every response keeps. The proofs that need a process to kill are
// in process_test.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ---- Concurrent writers ----

// TestConcurrentCreates sends creates all at once: writers each with slugs
// of their own, and clients racing for one slug. Every create gets its own
// answer, and only after its own commit: each 201 is already there for
// another connection to the database, as another process would see it.
func TestConcurrentCreates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		other := openSQL(t, ts.db)
		committed := func(slug string) bool {
			var n int
			if err := other.QueryRow(`SELECT count(*) FROM tutorials WHERE slug = $1`, slug).Scan(&n); err != nil {
				t.Error(err)
			}
			return n == 1
		}
		const writers, each, racers = 8, 50, 16
		start := make(chan struct{})
		raced := make(chan response, racers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				<-start
				for i := range each {
					slug := fmt.Sprintf("w%d-%d", w, i)
					resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, mustJSON(t, map[string]any{"title": "t", "slug": slug}))
					if resp.status != http.StatusCreated {
						t.Errorf("writer %d, create %d: %d %q", w, i, resp.status, resp.error)
						return
					}
					if !committed(slug) {
						t.Errorf("%s was answered 201 before it was committed", slug)
					}
				}
			})
		}
		for i := range racers {
			wg.Go(func() {
				<-start // all at once, as far as the scheduler allows
				resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey,
					mustJSON(t, map[string]any{"title": fmt.Sprint("client ", i), "slug": "same"}))
				if resp.status == http.StatusCreated && !committed("same") {
					t.Error("the racer's create was answered 201 before it was committed")
				}
				raced <- resp
			})
		}
		close(start)
		wg.Wait()
		close(raced)

		got := map[int]int{}
		for resp := range raced {
			got[resp.status]++
			if resp.status == http.StatusConflict {
				resp.wantError(t, http.StatusConflict, "Slug already exists")
			}
		}
		if diff := cmp.Diff(map[int]int{http.StatusCreated: 1, http.StatusConflict: racers - 1}, got); diff != "" {
			t.Errorf("the racers' statuses (-want +got):\n%s", diff)
		}
		if n := ts.count(t); n != writers*each+1 {
			t.Errorf("%d tutorials, want %d", n, writers*each+1)
		}
		if logs := ts.logs.String(); strings.Contains(logs, "locked") || strings.Contains(logs, "level=ERROR") {
			t.Errorf("the log shows a failed write:\n%s", logs)
		}
	})
}

// TestCreatesAtOnceGetTheirOwnAnswers sends creates to the store all at
// once, as a group commit gathers them into one write: creates of a slug
// already taken, several creates of one new slug, and creates that should
// simply work; then the same with creates beside them that the database
// refuses (an estimated_time beyond its CHECK, which the API would have
// refused first). Each gets the answer of its own create, whatever shared
// its write: the refused ones fail alone, one of the new slug's creates
// wins, and what is stored, counted and answered agree.
func TestCreatesAtOnceGetTheirOwnAnswers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestDatabase(t, e)
		ctx := context.Background()
		now := ts.clock.now()
		input := func(slug string) TutorialInput {
			return TutorialInput{Title: "t", Slug: slug, Category: "backend", Difficulty: "beginner"}
		}
		if _, err := ts.store.CreateTutorial(ctx, input("taken"), now); err != nil {
			t.Fatal(err)
		}
		const each = 16
		want := int64(1)
		for round, kinds := range [][]string{
			{"taken slug", "one new slug", "own slug"},
			{"taken slug", "refused", "one new slug", "own slug"},
		} {
			type answer struct {
				kind string
				in   TutorialInput
				t    Tutorial
				err  error
			}
			answers := make([]answer, len(kinds)*each)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range answers {
				kind := kinds[i%len(kinds)]
				in := input(fmt.Sprintf("own-%d-%d", round, i))
				in.Title = fmt.Sprintf("create %d of round %d", i, round)
				switch kind {
				case "taken slug":
					in.Slug = "taken"
				case "refused":
					in.EstimatedTime = ptr(int64(100_001))
				case "one new slug":
					in.Slug = fmt.Sprint("new-", round)
				}
				wg.Go(func() {
					<-start
					created, err := ts.store.CreateTutorial(ctx, in, now)
					answers[i] = answer{kind, in, created, err}
				})
			}
			close(start)
			wg.Wait()

			got := map[string]map[string]int{}
			for _, a := range answers {
				outcome := "created"
				switch {
				case errors.Is(a.err, ErrSlugTaken):
					outcome = "slug taken"
				case a.err != nil:
					outcome = "failed"
				case a.t.Title != a.in.Title:
					t.Errorf("round %d, %s: %q was answered with the tutorial of %q", round, a.kind, a.in.Title, a.t.Title)
				default:
					stored, err := ts.store.TutorialBySlug(ctx, a.t.Slug)
					if err != nil {
						t.Errorf("round %d, %s: created %s, then %v", round, a.kind, a.t.Slug, err)
					} else if diff := cmp.Diff(stored, a.t); diff != "" {
						t.Errorf("round %d, %s: the answer is not what was stored (-stored +answer):\n%s", round, a.kind, diff)
					}
				}
				if got[a.kind] == nil {
					got[a.kind] = map[string]int{}
				}
				got[a.kind][outcome]++
			}
			wantAnswers := map[string]map[string]int{
				"taken slug":   {"slug taken": each},
				"one new slug": {"created": 1, "slug taken": each - 1},
				"own slug":     {"created": each},
			}
			if slices.Contains(kinds, "refused") {
				wantAnswers["refused"] = map[string]int{"failed": each}
			}
			if diff := cmp.Diff(wantAnswers, got); diff != "" {
				t.Errorf("round %d, answers by kind of create (-want +got):\n%s", round, diff)
			}
			want += 1 + each
		}
		list, err := ts.store.ListTutorials(ctx, ListParams{Page: 1, PerPage: 100})
		if err != nil {
			t.Fatal(err)
		}
		if list.Total != want || len(list.Tutorials) != int(want) {
			t.Errorf("the list counts %d and holds %d tutorials, want %d", list.Total, len(list.Tutorials), want)
		}
	})
}

func TestTwoClientsPatchingDifferentFieldsKeepBoth(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		const rounds = 200
		var wg sync.WaitGroup
		for _, field := range []string{"title", "content"} {
			wg.Go(func() {
				for i := range rounds {
					body := mustJSON(t, map[string]any{field: fmt.Sprintf("%s %d", field, i)})
					if resp := ts.request(t, "PATCH", "/api/v1/tutorials/go", ts.writeKey, body); resp.status != http.StatusOK {
						t.Errorf("patch %s %d: %d %q", field, i, resp.status, resp.error)
						return
					}
				}
			})
		}
		wg.Wait()
		got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
		want := []string{fmt.Sprint("title ", rounds-1), fmt.Sprint("content ", rounds-1)}
		if diff := cmp.Diff(want, []string{got.Title, got.Content}); diff != "" {
			t.Errorf("last values (-want +got):\n%s", diff)
		}
	})
}

// ---- Slow clients ----

// halfRequest opens a connection and sends the start of a request, never
// the blank line that ends its headers.
func halfRequest(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, "GET /api/v1/tutorials HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// TestSlowClients holds the server that run starts to its timeouts, so that
// a slow client cannot hold a connection for ever (slowloris).
// SQLite only: the timeouts are the HTTP server's, before any database.
func TestSlowClients(t *testing.T) {
	t.Run("the timeouts are those SECURITY.md states", func(t *testing.T) {
		srv := newHTTPServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
		type timeouts struct{ ReadHeader, Read, Write, Idle time.Duration }
		want := timeouts{5 * time.Second, 30 * time.Second, 30 * time.Second, 120 * time.Second}
		got := timeouts{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("timeouts (-want +got):\n%s", diff)
		}
	})

	t.Run("headers slower than the read-header timeout are cut off", func(t *testing.T) {
		// The real program, so that what is tested is the server it serves
		// with; this waits out its read-header timeout, a few seconds.
		s := startServe(t, filepath.Join(t.TempDir(), "t.db"))
		conn := halfRequest(t, strings.TrimPrefix(s.url, "http://"))
		if _, err := io.WriteString(conn, "X-Slow: "); err != nil {
			t.Fatal(err)
		}
		// Keep sending a byte of a header every 50 ms: always busy, never done.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := conn.Write([]byte("a")); err != nil {
						return
					}
				}
			}
		}()
		// The server closes the connection: the read ends, with no response,
		// long before this guard against a server that never does.
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		b, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the server is still holding the connection of a client that never finishes its headers")
		}
		// net/http may answer 400 before it closes; never anything else.
		if len(b) != 0 && !strings.HasPrefix(string(b), "HTTP/1.1 400 ") {
			t.Errorf("the slow client got %q", b)
		}
	})
}

// ---- A database that cannot be written ----

// SQLite only: a full disk and a read-only file are what SQLite's writer
// reports, through WriteFailure; PostgreSQL's losses are the server's, for
// the tests of faults.
func TestDatabaseThatCannotBeWritten(t *testing.T) {
	tests := []struct {
		name        string
		break_, fix string // pragmas of the writer's connection
		cause       string // what the log must say
	}{
		// max_page_count stops the file growing: a full disk, as SQLite sees
		// it. (A tiny filesystem would need root and a mount.)
		{"disk full", "max_page_count = 1", "max_page_count = 1073741823", "database or disk is full"},
		// query_only makes SQLite refuse every write as it does on a
		// read-only file or directory. (Changing the file's mode would not
		// do: the tests may run as root, whom modes do not stop.)
		{"read-only", "query_only = 1", "query_only = 0", "readonly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, sqliteEngine)
			before := ts.create(t, map[string]any{"title": "Go", "slug": "go"})
			ts.writerPragma(t, tt.break_)
			big := strings.Repeat("x", 100_000) // so that a write needs new pages

			writes := []struct{ method, path, body string }{
				{"POST", "/api/v1/tutorials", mustJSON(t, map[string]any{"title": "New", "slug": "new", "content": big})},
				{"PATCH", "/api/v1/tutorials/go", mustJSON(t, map[string]any{"content": big})},
				{"PUT", "/api/v1/tutorials/go", mustJSON(t, map[string]any{"title": "Go", "slug": "go", "content": big})},
			}
			for _, w := range writes {
				resp := ts.request(t, w.method, w.path, ts.writeKey, w.body)
				resp.wantError(t, http.StatusInternalServerError, "Internal server error")
				if strings.Contains(strings.ToLower(string(resp.body)), "disk") || strings.Contains(string(resp.body), "readonly") {
					t.Errorf("%s: the response leaks the cause: %s", w.method, resp.body)
				}
			}
			if logs := ts.logs.String(); !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, tt.cause) {
				t.Errorf("the log does not name the cause %q:\n%s", tt.cause, logs)
			}

			// Reads carry on, and show nothing was half written.
			got := decodeData[Tutorial](t, ts.request(t, "GET", "/api/v1/tutorials/go", ts.readKey, ""))
			if diff := cmp.Diff(before, got); diff != "" {
				t.Errorf("the tutorial changed (-want +got):\n%s", diff)
			}
			if n := ts.count(t); n != 1 {
				t.Errorf("%d tutorials, want 1", n)
			}
			// Health tells the truth: the server answers, but loses writes.
			ts.request(t, "GET", "/healthz", "", "").wantError(t, http.StatusServiceUnavailable, "Database cannot be written")

			// Once the trouble is gone, the next write works and health
			// recovers: nothing was left broken.
			ts.writerPragma(t, tt.fix)
			ts.create(t, map[string]any{"title": "New", "slug": "new", "content": big})
			if resp := ts.request(t, "GET", "/healthz", "", ""); resp.status != http.StatusOK {
				t.Errorf("healthz after recovery: %d %q", resp.status, resp.error)
			}
		})
	}
}

// ---- Limits and headers ----

func TestHeadersTooLargeAre431(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		// The real program: the limit is the server's it serves with.
		s := startServe(t, newTestDB(t, e))
		req, _ := http.NewRequest("GET", s.url+"/api/v1/tutorials", nil)
		req.Header.Set("X-Padding", strings.Repeat("x", 2*maxHeaderBytes))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%d, want 431", res.StatusCode)
		}
	})
}

func TestLongSlugIsRefusedWithoutAQuery(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		long := strings.Repeat("a", maxSlug+1)
		ts.request(t, "GET", "/api/v1/tutorials/"+long, ts.readKey, "").wantError(t, http.StatusNotFound, "Tutorial not found")
		// With writes refused every write fails with a 500: a 404 shows
		// that none was tried. (The key lookup reads, which still works.)
		writes := []struct{ method, body string }{{"DELETE", ""}, {"PATCH", `{"title":"a"}`}, {"PUT", `{"title":"a","slug":"a"}`}}
		ts.refuseWrites(t)
		for _, w := range writes {
			ts.request(t, w.method, "/api/v1/tutorials/"+long, ts.writeKey, w.body).wantError(t, http.StatusNotFound, "Tutorial not found")
		}
	})
}

func TestResponsesRevealNothingOfTheServer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		var resps []response
		for _, r := range []struct{ method, path, key, body string }{
			{"GET", "/api/v1/tutorials", ts.readKey, ""},
			{"GET", "/api/v1/tutorials/go", ts.readKey, ""},
			{"GET", "/api/v1/tutorials/nope", ts.readKey, ""},
			{"GET", "/api/v1/tutorials?page=x", ts.readKey, ""},
			{"POST", "/api/v1/tutorials", ts.writeKey, `{"title":`},
			{"POST", "/api/v1/tutorials", ts.writeKey, `{"title":"Go","slug":"go"}`},
			{"POST", "/api/v1/tutorials", ts.readKey, `{"title":"Go","slug":"go"}`},
			{"GET", "/api/v1/tutorials", "", ""},
			{"GET", "/nowhere", "", ""},
		} {
			resps = append(resps, ts.request(t, r.method, r.path, r.key, r.body))
		}
		ts.refuseWrites(t) // a database failure, which must not show either
		resps = append(resps, ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, `{"title":"a","slug":"a"}`))

		for _, resp := range resps {
			// The body, and every header: a cause must not travel in either.
			var text strings.Builder
			text.Write(resp.body)
			for name, values := range resp.header {
				fmt.Fprintf(&text, "\n%s: %s", name, strings.Join(values, ", "))
			}
			lower := strings.ToLower(text.String())
			for _, leak := range []string{"sqlite", "sql:", "select ", "insert ", "goroutine", ".go:", "go1.", "/tmp/", "readonly", "pgx", "sqlstate", "trigger"} {
				if strings.Contains(lower, leak) {
					t.Errorf("%d response holds %q:\n%s", resp.status, leak, text.String())
				}
			}
		}
	})
}

func TestAuthenticatedResponsesAreNotSniffedOrCached(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.create(t, map[string]any{"title": "Go", "slug": "go"})
		for _, r := range []struct{ method, path, key, body string }{
			{"GET", "/api/v1/tutorials", ts.readKey, ""},
			{"GET", "/api/v1/tutorials/go", ts.readKey, ""},
			{"GET", "/api/v1/tutorials/nope", ts.readKey, ""},
			{"POST", "/api/v1/tutorials", ts.writeKey, `{"title":"New","slug":"new"}`},
			{"PATCH", "/api/v1/tutorials/new", ts.writeKey, `{"title":"Newer"}`},
			{"PUT", "/api/v1/tutorials/new", ts.writeKey, `{"title":"New","slug":"new"}`},
			{"DELETE", "/api/v1/tutorials/new", ts.writeKey, ""},
			{"POST", "/api/v1/tutorials", ts.readKey, `{"title":"a","slug":"a"}`},
			{"GET", "/api/v1/tutorials", "", ""},
			{"GET", "/api/v1/tutorials", "tut_" + strings.Repeat("0", 64), ""},
		} {
			resp := ts.request(t, r.method, r.path, r.key, r.body)
			got := []string{resp.header.Get("X-Content-Type-Options"), resp.header.Get("Cache-Control")}
			if diff := cmp.Diff([]string{"nosniff", "no-store"}, got); diff != "" {
				t.Errorf("%s %s (%d): headers (-want +got):\n%s", r.method, r.path, resp.status, diff)
			}
		}
	})
}
