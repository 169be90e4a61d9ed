package main

// This file speaks HTTP: the routes, the handlers, the envelope every
// response is wrapped in, and JSON out. What the handlers read from a
// request is checked in input.go; the middleware is in middleware.go, and
// ETags and If-Match in conditional.go.

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"tutorials/internal/cache"
	"tutorials/internal/cors"
	"tutorials/internal/etag"
	"tutorials/internal/forwarded"
	"tutorials/internal/lastused"
	"tutorials/internal/muxanswers"
)

// server is the whole HTTP handler of the program, with what it keeps in
// memory between requests, so that runServe can let go of it when the
// server goes idle.
type server struct {
	http.Handler
	keys    *keyCache
	answers answerCaches
}

// newServer builds the server from its settings and dependencies; tests
// build the same one on a temporary database. now is its clock (time.Now
// in the program): every time it keeps or compares comes from now, so that
// a test's fake clock moves them all at once.
func newServer(cfg config, logger *slog.Logger, store Store, usage *lastused.Record, now func() time.Time) *server {
	versions := cache.NewVersions(store.Version)
	keys := newKeyCache(versions, now)
	answers := newAnswerCaches(versions, now)
	auth := newAuthenticator(cfg, store, keys, usage, now)
	mux := http.NewServeMux()
	addRoutes(mux, cfg, store, auth, answers, now)
	var h http.Handler = muxanswers.Rewrite(mux, answerMuxInEnvelope)
	h = cors.Allow(cfg.corsOrigins, h)
	h = recoverPanics(logger, h)
	h = logRequests(logger, h)
	return &server{Handler: h, keys: keys, answers: answers}
}

// releaseAfter is how long a cache of the server must go without a request
// before releaseIfIdle lets go of it.
const releaseAfter = 2 * time.Second

// releaseIfIdle lets go of each cache that has gone releaseAfter without a
// request (runServe calls it every second): a server that waits hours
// between two bursts of requests holds the memory of neither.
func (s *server) releaseIfIdle() {
	s.keys.ReleaseIfIdle()
	s.answers.list.ReleaseIfIdle()
	s.answers.detail.ReleaseIfIdle()
}

// router is what addRoutes needs of a mux. An interface rather than
// *http.ServeMux so that a test can read the table: it passes a router that
// records each pattern, and holds them against openapi.json.
type router interface {
	Handle(pattern string, handler http.Handler)
}

// addRoutes is the table of contents of the API: every route, with the key
// scope it needs, in the order of the README. Every route must also be in
// openapi.json; TestOpenAPIDescribesEveryRoute fails until it is.
func addRoutes(mux router, cfg config, store Store, auth *authenticator, answers answerCaches, now func() time.Time) {
	mux.Handle("GET /api/v1/tutorials", auth.requireKey(scopeRead, handleListTutorials(store, answers.list, cfg.trustProxy)))
	mux.Handle("GET /api/v1/tutorials/{slug}", auth.requireKey(scopeRead, handleGetTutorial(store, answers.detail)))
	mux.Handle("POST /api/v1/tutorials", auth.requireKey(scopeWrite, handleCreateTutorial(store, now)))
	mux.Handle("PATCH /api/v1/tutorials/{slug}", auth.requireKey(scopeWrite, handlePatchTutorial(store, now)))
	mux.Handle("PUT /api/v1/tutorials/{slug}", auth.requireKey(scopeWrite, handleReplaceTutorial(store, now)))
	mux.Handle("DELETE /api/v1/tutorials/{slug}", auth.requireKey(scopeWrite, handleDeleteTutorial(store)))
	mux.Handle("GET /api/v1/openapi.json", handleOpenAPI())
	mux.Handle("GET /healthz", handleHealthz(store))
}

// ---- The envelope ----

// envelope is the body of every response:
// {"data": ..., "error": ..., "status": ...}.
type envelope struct {
	Data   any     `json:"data"`
	Error  *string `json:"error"`
	Status int     `json:"status"`
}

// writeJSON writes data in the envelope with status.
func writeJSON(w http.ResponseWriter, status int, data any) {
	writeEnvelope(w, envelope{Data: data, Status: status})
}

// writeEnvelope encodes env in full before writing anything, so that a value
// that fails to encode becomes a clean 500 rather than half a body.
func writeEnvelope(w http.ResponseWriter, env envelope) {
	var buf bytes.Buffer
	if err := appendJSON(&buf, env); err != nil {
		msg := msgInternal
		env = envelope{Error: &msg, Status: http.StatusInternalServerError}
		buf.Reset()
		appendJSON(&buf, env) // an envelope of a string cannot fail to encode
	}
	buf.WriteByte('\n')
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(env.Status)
	w.Write(buf.Bytes())
}

// appendJSON appends v to buf as every response encodes JSON: with HTML
// characters left alone, so that text comes back exactly as sent ("<"
// stays "<", not "\u003c"), and without the newline json.Encoder ends with.
// On an error it appends nothing.
func appendJSON(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1)
	return nil
}

// ---- Errors ----

const msgInternal = "Internal server error"

// apiError is a problem the client caused or should know of: its message is
// written to the client as it is.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorResponse is the one place that decides which error becomes which
// status. Errors it does not know are internal: the client gets a bland 500
// and the log gets the cause.
func errorResponse(err error) (status int, msg string) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound, "Tutorial not found"
	case errors.Is(err, ErrSlugTaken):
		return http.StatusConflict, "Slug already exists"
	case errors.Is(err, ErrEditConflict):
		return http.StatusPreconditionFailed, "Precondition failed"
	case errors.Is(err, ErrQueryTimeout):
		return http.StatusServiceUnavailable, "Query took too long"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, "Database unavailable"
	default:
		return http.StatusInternalServerError, msgInternal
	}
}

// writeError answers with the envelope for err. An internal error's cause is
// kept for the request's log line; it never reaches the client.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := errorResponse(err)
	if status == http.StatusInternalServerError || errors.Is(err, ErrUnavailable) {
		requestInfoFrom(r.Context()).err = err
	}
	writeEnvelope(w, envelope{Error: &msg, Status: status})
}

// ---- Tutorials: handlers ----

// tutorialPage is the data of a list response.
type tutorialPage struct {
	Tutorials []TutorialSummary `json:"tutorials"`
	Page      int64             `json:"page"`
	PerPage   int64             `json:"per_page"`
	Total     int64             `json:"total"`
	// TotalRelation says what Total is: "eq", the number of matches, or
	// "gte", a lower bound of it (a search counts up to a bound: see
	// TutorialList), in the manner of Elasticsearch's track_total_hits.
	TotalRelation string `json:"total_relation"`
	TotalPages    int64  `json:"total_pages"`
}

// handleListTutorials answers a page of the list, from memory when it can.
// The answers are kept by the parameters as parseListQuery read them, not
// by the query string, so every way of writing one query ("page=01", an
// unknown parameter) is one entry.
func handleListTutorials(store Store, answers *cache.Cache[ListParams, answer], trustProxy bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q, err := readQuery(r.URL.RawQuery)
		if err != nil {
			writeError(w, r, err)
			return
		}
		p, err := parseListQuery(q)
		if err != nil {
			writeError(w, r, err)
			return
		}
		a, err := answers.Get(r.Context(), p, func(ctx context.Context) (answer, error) {
			list, err := store.ListTutorials(ctx, p)
			if err != nil {
				return answer{}, err
			}
			page := tutorialPage{
				Tutorials:     list.Tutorials,
				Page:          p.Page,
				PerPage:       p.PerPage,
				Total:         list.Total,
				TotalRelation: "eq",
				TotalPages:    (list.Total + p.PerPage - 1) / p.PerPage,
			}
			if !list.TotalExact {
				page.TotalRelation = "gte"
			}
			body, etag, err := encodeEnvelope(http.StatusOK, page)
			return answer{body: bytes.Clone(body), etag: etag, link: pageLinks(p, page.TotalPages, list)}, err
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		// The links are kept relative, as one answer serves every host
		// name the server is reached by; each request gets them absolute,
		// as clients need them (Python's requests and fetch in Node refuse
		// a relative URL).
		w.Header().Set("Link", strings.ReplaceAll(a.link, "<"+listPath, "<"+forwarded.Origin(r, trustProxy)+listPath))
		writeEncoded(w, r, http.StatusOK, a.body, a.etag)
	})
}

// listPath is where the list is, and where its Link header points.
const listPath = "/api/v1/tutorials"

// pageLinks is the Link header of a page of the list (RFC 8288): first,
// prev, next and last, relative, each with p's parameters as
// parseListQuery read them and only page changed (so unknown parameters
// and defaults are left out). next also carries a cursor (see cursor.go),
// so that following it costs the same at any depth. An empty list has one,
// empty, page; there is no prev on page 1, no next unless an item follows,
// and the prev of a page past the end is the last page.
func pageLinks(p ListParams, totalPages int64, list TutorialList) string {
	q := url.Values{}
	if p.PerPage != defaultPerPage {
		q.Set("per_page", strconv.FormatInt(p.PerPage, 10))
	}
	for _, param := range [][2]string{{"category", p.Category}, {"difficulty", p.Difficulty}, {"q", p.Query}, {"sort", p.Sort}} {
		if param[1] != "" {
			q.Set(param[0], param[1])
		}
	}
	last := max(totalPages, 1)
	link := func(n int64, rel string) string {
		q.Set("page", strconv.FormatInt(n, 10))
		return "<" + listPath + "?" + q.Encode() + `>; rel="` + rel + `"`
	}
	links := []string{link(1, "first")}
	if p.Page > 1 {
		links = append(links, link(min(p.Page-1, last), "prev"))
	}
	if list.More && p.Page < math.MaxInt64 {
		if sort, ok := cursorSort(p); ok {
			q.Set("cursor", encodeCursor(sort, list.Tutorials[len(list.Tutorials)-1]))
		}
		links = append(links, link(p.Page+1, "next"))
		q.Del("cursor")
	}
	links = append(links, link(last, "last"))
	return strings.Join(links, ", ")
}

// handleGetTutorial answers one tutorial, from memory when it can.
func handleGetTutorial(store Store, answers *cache.Cache[string, answer]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slug := r.PathValue("slug")
		a, err := answers.Get(r.Context(), slug, func(ctx context.Context) (answer, error) {
			if !validSlug(slug) {
				return answer{}, ErrNotFound
			}
			t, err := store.TutorialBySlug(ctx, slug)
			if err != nil {
				return answer{}, err
			}
			body, etag, err := encodeTutorial(http.StatusOK, t)
			return answer{body: bytes.Clone(body), etag: etag}, err
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeEncoded(w, r, http.StatusOK, a.body, a.etag)
	})
}

func handleCreateTutorial(store Store, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := readTutorial(w, r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		t, err := store.CreateTutorial(r.Context(), in, now())
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.Header().Set("Location", "/api/v1/tutorials/"+t.Slug)
		writeTutorial(w, r, http.StatusCreated, t)
	})
}

func handlePatchTutorial(store Store, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := readPatch(w, r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		slug := r.PathValue("slug")
		if !validSlug(slug) {
			writeError(w, r, tutorialMissing(r))
			return
		}
		t, err := store.PatchTutorial(r.Context(), slug, p, now(), ifMatch(r))
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeTutorial(w, r, http.StatusOK, t)
	})
}

func handleReplaceTutorial(store Store, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := readTutorial(w, r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		slug := r.PathValue("slug")
		if !validSlug(slug) {
			writeError(w, r, tutorialMissing(r))
			return
		}
		t, err := store.ReplaceTutorial(r.Context(), slug, in, now(), ifMatch(r))
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeTutorial(w, r, http.StatusOK, t)
	})
}

func handleDeleteTutorial(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slug := r.PathValue("slug")
		if !validSlug(slug) {
			writeError(w, r, tutorialMissing(r))
			return
		}
		if err := store.DeleteTutorial(r.Context(), slug, ifMatch(r)); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// readTutorial reads a whole tutorial from the request body, for create and
// replace: the fields not sent take their defaults.
func readTutorial(w http.ResponseWriter, r *http.Request) (TutorialInput, error) {
	fields, err := readObject(w, r)
	if err != nil {
		return TutorialInput{}, err
	}
	p, err := parseTutorial(fields, wholeTutorial)
	if err != nil {
		return TutorialInput{}, err
	}
	// Title and slug are set: parseTutorial required them.
	in := TutorialInput{
		Title:         p.Title.Value,
		Slug:          p.Slug.Value,
		Excerpt:       p.Excerpt.Value,
		Content:       p.Content.Value,
		Category:      p.Category.Or(defaultCategory),
		Difficulty:    p.Difficulty.Or(defaultDifficulty),
		EstimatedTime: p.EstimatedTime.Value,
	}
	if p.PublishedAt.Set {
		in.PublishedAt = &p.PublishedAt.Value
	}
	return in, nil
}

// readPatch reads a change to a tutorial from the request body: only the
// fields sent change.
func readPatch(w http.ResponseWriter, r *http.Request) (TutorialPatch, error) {
	fields, err := readObject(w, r)
	if err != nil {
		return TutorialPatch{}, err
	}
	return parseTutorial(fields, tutorialChange)
}

// ---- Responses kept until the next commit ----

// answerCaches are the answers the GET handlers keep, each until anyone
// commits anything (see internal/cache): a GET is then a map lookup instead
// of a query and an encoding.
type answerCaches struct {
	list   *cache.Cache[ListParams, answer]
	detail *cache.Cache[string, answer] // by slug
}

// The bounds of the caches. The list's stop a client that asks for endless
// distinct queries; the tutorials' hold a library of 10,000 tutorials of
// 2 KB. A bigger one is kept in part.
const (
	listCacheEntries   = 256
	listCacheBytes     = 4 << 20
	detailCacheEntries = 16 << 10
	detailCacheBytes   = 28 << 20
)

// newAnswerCaches keeps answers by the newest version the key check read
// (versions.Latest), not a reading of their own: every route that uses them
// is behind requireKey, whose check reads the version fresh.
func newAnswerCaches(versions *cache.Versions, now func() time.Time) answerCaches {
	return answerCaches{
		list: cache.New(cache.Options[ListParams, answer]{
			Version: versions.Latest, MaxEntries: listCacheEntries, MaxBytes: listCacheBytes,
			Size: func(p ListParams, a answer) int {
				return len(p.Category) + len(p.Difficulty) + len(p.Query) + len(p.Sort) + len(p.After.Key) + a.size()
			},
			IdleAfter: releaseAfter, Now: now,
		}),
		detail: cache.New(cache.Options[string, answer]{
			Version: versions.Latest, MaxEntries: detailCacheEntries, MaxBytes: detailCacheBytes,
			Size:      func(slug string, a answer) int { return len(slug) + a.size() },
			IdleAfter: releaseAfter, Now: now,
		}),
	}
}

// answer is what a GET handler needs to answer again: the body made by
// encodeEnvelope, its ETag, and the list's Link header. body is shared
// between requests and must never be changed; it is cloned to its length,
// so that a buffer's spare room is not kept with it.
type answer struct {
	body []byte
	etag string
	link string
}

// size is the number of bytes a points to.
func (a answer) size() int {
	return cap(a.body) + len(a.etag) + len(a.link)
}

// ---- OpenAPI ----

// openAPIDocument describes every route of addRoutes, for people and for
// tools that generate clients, embedded so that the binary serves its own.
//
//go:embed openapi.json
var openAPIDocument []byte

// handleOpenAPI serves openapi.json as the envelope's data, as the
// contract asks of every response. It needs no key, so that a person can
// find out how to get one.
func handleOpenAPI() http.Handler {
	tag := etag.Of(openAPIDocument)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", tag)
		if header, ok := etag.Header(r, "If-None-Match"); ok && etag.NoneMatch(header, tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, http.StatusOK, json.RawMessage(openAPIDocument))
	})
}

// ---- Health ----

func handleHealthz(store Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := store.Ping(r.Context()); err != nil {
			requestInfoFrom(r.Context()).err = err
			writeError(w, r, &apiError{http.StatusServiceUnavailable, "Database unavailable"})
			return
		}
		// Reads still work when the disk is full or the file read-only, but
		// every write is lost: that is not a healthy server.
		if err := store.WriteFailure(); err != nil {
			requestInfoFrom(r.Context()).err = err
			writeError(w, r, &apiError{http.StatusServiceUnavailable, "Database cannot be written"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}
