package main

// The handler paths under `go test -bench`, each next to a bare net/http
// baseline that does the same HTTP work and nothing else. They check
// nothing but each answer's status: CI runs them briefly, as a smoke run
// whose log shows time and allocations per path for a person to read, and
// nothing fails if those grow. The real numbers come from go run ./bench
// (see BENCHMARKS.md).
//
//	go test -run '^$' -bench . -benchmem

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"tutorials/internal/cache"
	"tutorials/internal/lastused"
)

// benchRows is how many tutorials the benchmarks' database holds.
const benchRows = 100

// benchServer is the real handler on a real SQLite file, seeded.
type benchServer struct {
	handler http.Handler
	answers answerCaches // the handler's
	store   Store
	key     string
	detail  []byte // the body of a detail response, for the baseline
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	ctx := context.Background()
	store, err := OpenStore(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	key, _, err := issueKey(ctx, store, APIKey{Name: "bench", Scope: scopeWrite, CreatedAt: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	content := strings.Repeat("Benchmarks measure; they do not guess. ", 52)
	now := time.Now()
	for i := range benchRows {
		_, err := store.CreateTutorial(ctx, TutorialInput{
			Title: fmt.Sprintf("Tutorial %d", i), Slug: fmt.Sprintf("tutorial-%d", i),
			Content: content, Category: "backend", Difficulty: "beginner",
		}, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			b.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := newServer(benchConfig(b), logger, store, lastused.New(), time.Now)
	s := &benchServer{handler: api, answers: api.answers, store: store, key: key}
	w := s.serve(httptest.NewRequest("GET", "/api/v1/tutorials/tutorial-1", nil))
	if w.status != http.StatusOK {
		b.Fatalf("GET detail: %d", w.status)
	}
	s.detail = w.body
	return s
}

// benchConfig is the serve command's default configuration.
func benchConfig(b *testing.B) config {
	b.Helper()
	cfg, err := parseServeConfig(nil, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	cfg.rate = 0 // one key making every request
	return cfg
}

// serve runs r through the handler with the key, and returns what it wrote.
func (s *benchServer) serve(r *http.Request) *sinkWriter {
	r.Header.Set("Authorization", "Bearer "+s.key)
	w := &sinkWriter{header: http.Header{}}
	s.handler.ServeHTTP(w, r)
	return w
}

// sinkWriter is a ResponseWriter that keeps the status and the body. Both
// the server and the baseline write into it, so that neither pays for a
// socket and the difference between them is the handler's own work.
type sinkWriter struct {
	header http.Header
	status int
	body   []byte
}

func (w *sinkWriter) Header() http.Header { return w.header }
func (w *sinkWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *sinkWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}

// baselineHandler writes body, encoded once beforehand: no routing, no key,
// no database, no JSON.
func baselineHandler(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
}

// serveEach serves one request per iteration, made by newRequest, and checks each
// answer's status.
func serveEach(b *testing.B, h http.Handler, key string, want int, newRequest func(i int) *http.Request) {
	b.Helper()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := newRequest(i)
		r.Header.Set("Authorization", "Bearer "+key)
		w := &sinkWriter{header: http.Header{}}
		h.ServeHTTP(w, r)
		if w.status != want {
			b.Fatalf("request %d: %d, want %d: %s", i, w.status, want, w.body)
		}
		i++
	}
}

func getRequest(path string) func(int) *http.Request {
	return func(int) *http.Request { return httptest.NewRequest("GET", path, nil) }
}

// BenchmarkGetTutorial is a GET of a tutorial as the server answers it
// once the answer is kept (server), and as it answers the first time, from
// the database (server_uncached: the kept answers are dropped before each
// request).
func BenchmarkGetTutorial(b *testing.B) {
	s := newBenchServer(b)
	rotating := func(i int) *http.Request {
		return httptest.NewRequest("GET", "/api/v1/tutorials/tutorial-"+strconv.Itoa(i%benchRows), nil)
	}
	b.Run("server", func(b *testing.B) {
		serveEach(b, s.handler, s.key, http.StatusOK, rotating)
	})
	b.Run("server_uncached", func(b *testing.B) {
		uncached := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.answers.detail.Clear()
			s.handler.ServeHTTP(w, r)
		})
		serveEach(b, uncached, s.key, http.StatusOK, rotating)
	})
	b.Run("baseline", func(b *testing.B) {
		serveEach(b, baselineHandler(s.detail), s.key, http.StatusOK, getRequest("/api/v1/tutorials/tutorial-1"))
	})
}

func BenchmarkListTutorials(b *testing.B) {
	s := newBenchServer(b)
	page := s.serve(httptest.NewRequest("GET", "/api/v1/tutorials", nil)).body
	b.Run("server", func(b *testing.B) {
		serveEach(b, s.handler, s.key, http.StatusOK, getRequest("/api/v1/tutorials"))
	})
	b.Run("baseline", func(b *testing.B) {
		serveEach(b, baselineHandler(page), s.key, http.StatusOK, getRequest("/api/v1/tutorials"))
	})
}

// BenchmarkAuth is the key check alone, in front of a handler that does
// nothing; the baseline is that handler without it.
func BenchmarkAuth(b *testing.B) {
	s := newBenchServer(b)
	auth := newAuthenticator(benchConfig(b), s.store, newKeyCache(cache.NewVersions(s.store.Version), time.Now), lastused.New(), time.Now)
	noContent := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	b.Run("server", func(b *testing.B) {
		serveEach(b, auth.requireKey(scopeWrite, noContent), s.key, http.StatusNoContent, getRequest("/"))
	})
	b.Run("baseline", func(b *testing.B) {
		serveEach(b, noContent, s.key, http.StatusNoContent, getRequest("/"))
	})
}

var createSeq atomic.Int64 // unique slugs across every run of the benchmark

func createRequest(int) *http.Request {
	slug := "created-" + strconv.FormatInt(createSeq.Add(1), 10)
	body := `{"title": "Created", "slug": "` + slug + `", "content": "` +
		strings.Repeat("Benchmarks measure; they do not guess. ", 52) + `"}`
	r := httptest.NewRequest("POST", "/api/v1/tutorials", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

// BenchmarkCreateTutorial is one client creating, one request at a time:
// each waits for its own commit's fsync.
func BenchmarkCreateTutorial(b *testing.B) {
	s := newBenchServer(b)
	b.Run("server", func(b *testing.B) {
		serveEach(b, s.handler, s.key, http.StatusCreated, createRequest)
	})
	b.Run("baseline", func(b *testing.B) {
		serveEach(b, baselineHandler(s.detail), s.key, http.StatusOK, createRequest)
	})
}

// BenchmarkCreateTutorialParallel is many clients creating at once, as the
// bench's POST case does.
func BenchmarkCreateTutorialParallel(b *testing.B) {
	s := newBenchServer(b)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := createRequest(0)
			r.Header.Set("Authorization", "Bearer "+s.key)
			w := &sinkWriter{header: http.Header{}}
			s.handler.ServeHTTP(w, r)
			if w.status != http.StatusCreated {
				b.Errorf("%d: %s", w.status, w.body)
				return
			}
		}
	})
}
