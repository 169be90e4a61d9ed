package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"tutorials/internal/cache"
	"tutorials/internal/validator"
)

// This file speaks HTTP: the routes, the handlers, the envelope every
// response is wrapped in, and JSON in and out.

// server is the whole HTTP handler of the program, with what it keeps in
// memory between requests, so that runServe can let go of it when the
// server goes idle.
type server struct {
	http.Handler
	keys    *keyCache
	answers answerCaches
}

// newServer builds the server from its settings and dependencies. Tests
// build the same one on a temporary database.
//
// now is the server's clock, time.Now in the program: every time the server
// keeps or compares (created_at and updated_at, rate-limit buckets, when a
// key was last used) comes from it, so that a test that moves a fake clock
// moves all of them at once.
func newServer(cfg config, logger *slog.Logger, store Store, usage *keyUsage, now func() time.Time) *server {
	keys := newKeyCache(store, now)
	answers := newAnswerCaches(store, now)
	auth := newAuthenticator(cfg, store, keys, usage, now)
	mux := http.NewServeMux()
	addRoutes(mux, store, auth, answers, now)
	var h http.Handler = muxAnswersInEnvelope(mux)
	h = allowCORS(cfg.corsOrigins, h)
	h = recoverPanics(logger, h)
	h = logRequests(logger, h)
	return &server{Handler: h, keys: keys, answers: answers}
}

// releaseAfter is how long a cache of the server must go without a request
// before releaseIfIdle lets go of it.
const releaseAfter = 2 * time.Second

// releaseIfIdle lets go of what the server keeps in memory, each cache once
// it has gone releaseAfter without a request, by the server's clock.
// runServe calls it every second. A server that waits hours between two
// bursts of requests then holds the memory of neither; the first requests
// after a pause are answered from the database, as after a start.
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
func addRoutes(mux router, store Store, auth *authenticator, answers answerCaches, now func() time.Time) {
	mux.Handle("GET /api/v1/tutorials", auth.requireKey(scopeRead, handleListTutorials(store, answers.list)))
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
	default:
		return http.StatusInternalServerError, msgInternal
	}
}

// writeError answers with the envelope for err. An internal error's cause is
// kept for the request's log line; it never reaches the client.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := errorResponse(err)
	if status == http.StatusInternalServerError {
		requestInfoFrom(r.Context()).err = err
	}
	writeEnvelope(w, envelope{Error: &msg, Status: status})
}

// ---- Middleware ----

// requestInfo travels with a request in its context, so that the handlers
// deep inside can tell the log line about it: which key was used, and the
// cause of a 500. It is the log line's, and nothing else's.
type requestInfo struct {
	id    string
	keyID int64
	err   error
}

type requestInfoKey struct{}

// requestInfoFrom returns the request's info. Outside logRequests (a handler
// called on its own) it returns a throwaway one, so callers need no checks.
func requestInfoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

// responseRecorder remembers what was written, for the log line.
type responseRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *responseRecorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *responseRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (rec *responseRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// logRequests writes one line per request: method, path, status, bytes,
// duration, key id and request id. Never a header value other than the
// request id, never a query string, never a body: they may hold a key or
// someone's text.
func logRequests(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &requestInfo{id: requestID(r.Header.Get("X-Request-ID"))}
		w.Header().Set("X-Request-ID", info.id)
		// No response of ours is meant to be sniffed as anything but JSON.
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rec := &responseRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info)))

		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.Int64("key_id", info.keyID),
			slog.String("request_id", info.id),
		}
		level := slog.LevelInfo
		if info.err != nil {
			// A client that hung up cancels its query; that is no fault of
			// the server's, and an operator should not be woken for it.
			if !(errors.Is(info.err, context.Canceled) && r.Context().Err() != nil) {
				level = slog.LevelError
			}
			attrs = append(attrs, slog.String("error", info.err.Error()))
		}
		logger.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// requestID returns the client's X-Request-ID when it is a sensible token,
// so that a request can be followed across a proxy and this server's log;
// otherwise a new random one. The client's value is bounded and restricted
// to plain characters because it goes into the log.
func requestID(fromClient string) string {
	if len(fromClient) > 0 && len(fromClient) <= 128 && !strings.ContainsFunc(fromClient, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_.:", c))
	}) {
		return fromClient
	}
	// Not a secret, only unique enough to find in a log, so the fast
	// math/rand is fine.
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], rand.Uint64())
	return hex.EncodeToString(id[:])
}

// recoverPanics turns a panic in a handler into a 500 envelope, and logs the
// panic with its stack. The client never sees either.
func recoverPanics(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // the documented way to abort a response
				panic(v)
			}
			logger.Error("panic", "request_id", requestInfoFrom(r.Context()).id,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if rec, ok := w.(*responseRecorder); ok && rec.status != 0 {
				// Too late for an envelope: the status is out. Cut the
				// connection so the client cannot take half a body for a
				// whole one.
				panic(http.ErrAbortHandler)
			}
			requestInfoFrom(r.Context()).err = fmt.Errorf("panic: %v", v)
			msg := msgInternal
			writeEnvelope(w, envelope{Error: &msg, Status: http.StatusInternalServerError})
		}()
		next.ServeHTTP(w, r)
	})
}

// CORS: what a browser page on an allowed origin may send and read.
const (
	corsAllowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsAllowHeaders = "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID"
	// Without this list a page could read only the simplest response
	// headers: not where a new tutorial is, nor how long to back off.
	corsExposeHeaders = "Location, ETag, Link, RateLimit, RateLimit-Policy, Retry-After, X-Request-ID"
	// corsMaxAge lets a browser reuse a preflight for two hours, the most
	// Chromium accepts.
	corsMaxAge = "7200"
)

// allowCORS lets pages from origins call the API from a browser. It sits
// outside muxAnswersInEnvelope and the key checks, because a preflight carries
// neither a route's method nor a key: it asks whether the real request may
// be sent.
//
// An allowed origin gets its own value echoed back, never "*", and never
// Access-Control-Allow-Credentials: keys travel in Authorization, which a
// page must add itself, so no cookie is ever at stake. Any other origin gets
// no CORS header at all, which the browser takes as a refusal; its preflight
// falls through to the 405 every other OPTIONS gets.
func allowCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The answer depends on Origin, so a cache must not hand one
		// origin's answer to another.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}

// muxAnswersInEnvelope answers in the envelope where ServeMux answers on
// its own: an unknown path (404), a known path with a method it has no
// route for (405, with the Allow header the mux sets), and a path it would
// redirect to its clean form (/api//v1/ to /api/v1/), which to an API
// client names nothing: 404. The mux looks each route up once, as it
// would alone; what it answers itself is rewritten on its way out.
func muxAnswersInEnvelope(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&muxAnswerWriter{ResponseWriter: w, r: r}, r)
	})
}

// muxAnswerWriter rewrites the answers ServeMux writes itself. It tells
// them from a handler's by their Content-Type: every handler here answers
// in the JSON envelope, or with no body at all (204, 304), while the mux
// writes its errors in plain text (http.Error) and its redirects with a
// Location (http.Redirect).
type muxAnswerWriter struct {
	http.ResponseWriter
	r         *http.Request
	rewritten bool // the mux's answer was replaced: what it writes next goes nowhere
}

func (w *muxAnswerWriter) WriteHeader(status int) {
	if w.rewritten {
		return
	}
	h := w.Header()
	redirect := 300 <= status && status < 400 && h.Get("Location") != ""
	if (status < 400 && !redirect) || strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.rewritten = true
	h.Del("Location")
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", inMethodOrder(h.Get("Allow")))
		writeError(w.ResponseWriter, w.r, &apiError{http.StatusMethodNotAllowed, "Method not allowed"})
		return
	}
	writeError(w.ResponseWriter, w.r, &apiError{http.StatusNotFound, "Not found"})
}

func (w *muxAnswerWriter) Write(b []byte) (int, error) {
	if w.rewritten {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *muxAnswerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methodOrder is the order in which the README lists the methods, and Allow
// too; ServeMux sorts them by name.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// inMethodOrder is allow, a list of methods, in methodOrder.
func inMethodOrder(allow string) string {
	methods := strings.Split(allow, ", ")
	rank := func(m string) int {
		if i := slices.Index(methodOrder, m); i >= 0 {
			return i
		}
		return len(methodOrder)
	}
	slices.SortStableFunc(methods, func(a, b string) int { return rank(a) - rank(b) })
	return strings.Join(methods, ", ")
}

// ---- JSON in ----

// maxBodyBytes bounds a request body: far above any tutorial (content is at
// most 200,000 characters), far below what could hurt the server.
const maxBodyBytes = 1 << 20

const msgNotJSON = "Request body must be JSON"

// readObject reads the request body as one JSON object and returns its
// members undecoded, so that each field can be checked on its own and every
// problem reported at once.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	if r.ContentLength == 0 {
		return nil, &apiError{http.StatusBadRequest, msgNotJSON}
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return nil, &apiError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	if r.ContentLength > maxBodyBytes {
		return nil, &apiError{http.StatusRequestEntityTooLarge, "Request body too large"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &apiError{http.StatusRequestEntityTooLarge, "Request body too large"}
		}
		return nil, &apiError{http.StatusBadRequest, "Could not read the request body"}
	}
	if !json.Valid(body) {
		return nil, &apiError{http.StatusBadRequest, msgNotJSON}
	}
	// encoding/json would quietly turn bytes that are not UTF-8, and \u
	// escapes of half a surrogate pair, into U+FFFD: the text stored would
	// not be the text sent. Such a body is not JSON (RFC 8259, 8.1 and 8.2).
	if !utf8.Valid(body) || hasLoneSurrogate(body) {
		return nil, &apiError{http.StatusBadRequest, "Request body must be valid UTF-8"}
	}
	if kind := jsonKind(body); kind != "object" {
		return nil, &apiError{http.StatusBadRequest, "Request body must be a JSON object, not " + kind}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, &apiError{http.StatusBadRequest, msgNotJSON}
	}
	return fields, nil
}

// hasLoneSurrogate reports whether valid JSON holds a \u escape of a UTF-16
// surrogate that is not one half of a pair, "\ud800" say: no character.
// In valid JSON a backslash only ever starts an escape inside a string, so
// the scan needs no parser.
func hasLoneSurrogate(body []byte) bool {
	surrogate := func(i int) (rune, bool) { // the escape \uXXXX at body[i:]
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		return rune(n), err == nil && utf16.IsSurrogate(rune(n))
	}
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		r, ok := surrogate(i)
		if !ok {
			i++ // the escaped character, a backslash perhaps
			continue
		}
		low, ok := surrogate(i + 6)
		if r > 0xdbff || !ok || low < 0xdc00 {
			return true // a low half first, or a high half alone
		}
		i += 11
	}
	return false
}

// jsonKind names the kind of a valid JSON value from its first character.
func jsonKind(v []byte) string {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// ---- Tutorials: validation ----

// The rules of section 3 of the contract.
var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

const (
	maxTitle         = 200
	maxSlug          = 100
	maxExcerpt       = 500
	maxContent       = 200_000
	maxCategory      = 50
	maxEstimatedTime = 100_000

	defaultCategory   = "backend"
	defaultDifficulty = "beginner"
)

var difficulties = []string{"beginner", "intermediate", "advanced"}

// writableFields are the fields a client may send, in the order problems
// with them are reported.
var writableFields = []string{"title", "slug", "excerpt", "content", "category",
	"difficulty", "estimated_time", "published_at"}

// readOnlyFields are set by the server; sending one is an error rather than
// silently ignored, so that a client learns its value did not stick.
var readOnlyFields = []string{"id", "created_at", "updated_at"}

// inputMode says what a body is for: a whole tutorial (create, replace) or
// a change (patch).
type inputMode int

const (
	wholeTutorial inputMode = iota
	tutorialChange
)

// parseTutorial checks the members of a request body against the rules of
// the contract and returns the fields sent as a patch. A whole tutorial
// (create, replace) must have a title and a slug. All problems are reported
// at once, joined by "; ": each field's in the order of writableFields, then
// fields that may not be sent.
func parseTutorial(fields map[string]json.RawMessage, mode inputMode) (TutorialPatch, error) {
	v := validator.New()
	required := mode == wholeTutorial
	var p TutorialPatch

	if s, sent := stringField(v, fields, "title", required); sent {
		s = strings.TrimSpace(s)
		v.Check(s != "", "title", "title is required")
		v.Check(utf8.RuneCountInString(s) <= maxTitle, "title", fmt.Sprintf("title must be at most %d characters", maxTitle))
		p.Title = Some(s)
	}
	if s, sent := stringField(v, fields, "slug", required); sent {
		v.Check(strings.TrimSpace(s) != "", "slug", "slug is required")
		v.Check(len(s) <= maxSlug, "slug", fmt.Sprintf("slug must be at most %d characters", maxSlug))
		v.Check(slugPattern.MatchString(s), "slug", "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial")
		p.Slug = Some(s)
	}
	if s, sent := stringField(v, fields, "excerpt", false); sent {
		v.Check(utf8.RuneCountInString(s) <= maxExcerpt, "excerpt", fmt.Sprintf("excerpt must be at most %d characters", maxExcerpt))
		p.Excerpt = Some(s)
	}
	if s, sent := stringField(v, fields, "content", false); sent {
		v.Check(utf8.RuneCountInString(s) <= maxContent, "content", fmt.Sprintf("content must be at most %d characters", maxContent))
		p.Content = Some(s)
	}
	if s, sent := stringField(v, fields, "category", false); sent {
		s = strings.TrimSpace(s)
		v.Check(s != "" && utf8.RuneCountInString(s) <= maxCategory, "category", fmt.Sprintf("category must be 1 to %d characters", maxCategory))
		p.Category = Some(s)
	}
	if s, sent := stringField(v, fields, "difficulty", false); sent {
		v.Check(slices.Contains(difficulties, s), "difficulty", "difficulty must be one of "+strings.Join(difficulties, ", "))
		p.Difficulty = Some(s)
	}
	if raw, sent := fields["estimated_time"]; sent {
		var minutes *int64 // null: no estimate
		if string(raw) != "null" {
			minutes = new(int64)
			v.Check(json.Unmarshal(raw, minutes) == nil, "estimated_time", "estimated_time must be an integer or null")
			v.Check(*minutes >= 0 && *minutes <= maxEstimatedTime, "estimated_time", fmt.Sprintf("estimated_time must be between 0 and %d minutes", maxEstimatedTime))
		}
		p.EstimatedTime = Some(minutes)
	}
	if s, sent := stringField(v, fields, "published_at", false); sent {
		t, err := time.Parse(time.RFC3339, s)
		v.Check(err == nil, "published_at", "published_at must be an RFC 3339 time, like 2026-11-24T21:17:33Z")
		// time.Parse takes an offset of +24:00 or more, a day or more
		// away; RFC 3339 stops at 23:59.
		_, offset := t.Zone()
		v.Check(max(offset, -offset) < 24*60*60, "published_at", "published_at must have a UTC offset between -23:59 and +23:59")
		// An offset can carry a time of year 0000 or 9999 over the edge of
		// the four-digit years the stored form has room for.
		t = t.UTC().Truncate(time.Second)
		v.Check(t.Year() >= 0 && t.Year() <= 9999, "published_at", "published_at must be between the years 0000 and 9999 in UTC")
		p.PublishedAt = Some(t)
	}

	for _, name := range readOnlyFields {
		_, sent := fields[name]
		v.Check(!sent, name, name+" is read-only")
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names) // map order is random; messages should not be
	for _, name := range names {
		known := slices.Contains(writableFields, name) || slices.Contains(readOnlyFields, name)
		v.Check(known, name, fmt.Sprintf("unknown field %q", name))
	}

	if !v.Valid() {
		return TutorialPatch{}, &apiError{http.StatusBadRequest, v.Message()}
	}
	return p, nil
}

// stringField reads the member name of a body as a string, and whether it
// was sent at all. One that is required and missing, or that is not a
// string, is a problem of v's.
func stringField(v *validator.Validator, fields map[string]json.RawMessage, name string, required bool) (s string, sent bool) {
	raw, sent := fields[name]
	v.Check(sent || !required, name, name+" is required")
	if !sent {
		return "", false
	}
	s, ok := jsonString(raw)
	v.Check(ok, name, name+" must be a string")
	return s, true
}

// jsonString decodes raw if it is a JSON string. (json.Unmarshal alone would
// quietly accept null and leave the string empty.)
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// validSlug reports whether a slug from a path could name a tutorial. One
// that could not is a 404 without asking the database.
func validSlug(s string) bool {
	return len(s) <= maxSlug && slugPattern.MatchString(s)
}

// ---- Tutorials: the list query ----

const (
	defaultPerPage = 20
	maxPerPage     = 100
	maxQuery       = 200
)

var sortNames = []string{"-published_at", "published_at", "title", "-title"}

// parseListQuery reads the list's query parameters. Unknown parameters are
// ignored; a bad value of a known one is a 400 naming it.
func parseListQuery(q url.Values) (ListParams, error) {
	// Sort stays "" unless given: the store's default, which is relevance
	// for a search and newest first otherwise.
	p := ListParams{Page: 1, PerPage: defaultPerPage}
	var problems []string

	if s := q.Get("page"); s != "" {
		n, ok := positiveInt(s)
		if !ok {
			problems = append(problems, "page must be an integer of at least 1")
		}
		p.Page = n
	}
	if s := q.Get("per_page"); s != "" {
		n, ok := positiveInt(s)
		if !ok {
			problems = append(problems, "per_page must be an integer of at least 1")
		}
		p.PerPage = min(n, maxPerPage)
	}
	p.Category = q.Get("category")
	if s := q.Get("difficulty"); s != "" {
		if !slices.Contains(difficulties, s) {
			problems = append(problems, "difficulty must be one of "+strings.Join(difficulties, ", "))
		}
		p.Difficulty = s
	}
	// A q of spaces is no search, as an empty one is; a q with text but no
	// word in it ("***", "-") could only ever find nothing, which a client
	// would take for "no tutorial matches": it is told instead. The length
	// is bounded because the cost of a search grows faster than its number
	// of words; a whole title still fits.
	if s := strings.TrimSpace(q.Get("q")); s != "" {
		switch {
		case utf8.RuneCountInString(s) > maxQuery:
			problems = append(problems, fmt.Sprintf("q must be at most %d characters", maxQuery))
		case len(searchWords(s)) == 0:
			problems = append(problems, "q must contain at least one letter or digit")
		}
		p.Query = s
	}
	if s := q.Get("sort"); s != "" {
		if !slices.Contains(sortNames, s) {
			problems = append(problems, "sort must be one of "+strings.Join(sortNames, ", "))
		}
		p.Sort = s
	}

	if len(problems) > 0 {
		return p, &apiError{http.StatusBadRequest, strings.Join(problems, "; ")}
	}
	return p, nil
}

// positiveInt parses a decimal integer of at least 1. One too large for an
// int64 is still a valid number, only a very large one: it counts as the
// largest int64 (a page past any end, a per_page of 100).
//
// ParseInt reports ErrRange as soon as the digits overflow, before it looks
// at the rest: "99999999999999999999x" is out of range, not a syntax error.
// So a large number is only taken for one when every character is a digit.
func positiveInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) && s[0] != '-' &&
		!strings.ContainsFunc(strings.TrimPrefix(s, "+"), func(c rune) bool { return c < '0' || c > '9' }) {
		return math.MaxInt64, true
	}
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// ---- Tutorials: handlers ----

// tutorialPage is the data of a list response.
type tutorialPage struct {
	Tutorials  []TutorialSummary `json:"tutorials"`
	Page       int64             `json:"page"`
	PerPage    int64             `json:"per_page"`
	Total      int64             `json:"total"`
	TotalPages int64             `json:"total_pages"`
}

// handleListTutorials answers a page of the list, from memory when it can.
//
// The answers are kept by the parameters as parseListQuery read them, not
// by the query string: an unknown parameter changes nothing in the answer,
// so it makes no entry of its own, and every way of writing one query
// ("page=01", a per_page over 100) is one entry.
func handleListTutorials(store Store, answers *cache.Cache[ListParams, answer]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := parseListQuery(r.URL.Query())
		if err != nil {
			writeError(w, r, err)
			return
		}
		a, err := answers.Get(r.Context(), p, func(ctx context.Context) (answer, error) {
			list, total, err := store.ListTutorials(ctx, p)
			if err != nil {
				return answer{}, err
			}
			totalPages := (total + p.PerPage - 1) / p.PerPage
			body, etag, err := encodeEnvelope(http.StatusOK, tutorialPage{
				Tutorials:  list,
				Page:       p.Page,
				PerPage:    p.PerPage,
				Total:      total,
				TotalPages: totalPages,
			})
			return answer{body: bytes.Clone(body), etag: etag, link: pageLinks(p, totalPages)}, err
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.Header().Set("Link", a.link)
		writeEncoded(w, r, http.StatusOK, a.body, a.etag)
	})
}

// listPath is where the list is, and where its Link header points.
const listPath = "/api/v1/tutorials"

// pageLinks is the Link header of a page of the list (RFC 8288): first,
// prev, next and last, each the list with p's parameters and only page
// changed, so that search, filters, sort and per_page carry over. They are
// the parameters as parseListQuery read them, so that the links, like the
// answer, are the same for every way of writing one query: a parameter the
// server does not know is not in them, per_page over 100 is 100, and a
// default (per_page=20) is left out. The links are relative to the server,
// so that they stay right behind a proxy that rewrites the host.
//
// There is always a first and a last page: an empty list has one, empty,
// page. No prev on page 1, no next on the last page. A page past the end
// has no next, and its prev is the last page, back where the items are.
func pageLinks(p ListParams, totalPages int64) string {
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
	if p.Page < last {
		links = append(links, link(p.Page+1, "next"))
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

// ---- Conditional requests ----

// An ETag names one exact representation of a resource: a client that
// keeps it can ask "has it changed?" (If-None-Match on a GET, answered 304
// when it has not) or "write only if nobody changed it since I read it"
// (If-Match on a write, answered 412 when somebody did).
//
// A tutorial's ETag is its Revision, "id-version". The version moves with
// every change, whoever makes it (a person in the sqlite3 shell included),
// even twice within a second, which updated_at, in whole seconds, could not
// tell apart. Ids are never reused, so a tutorial deleted and made again
// under the same slug never takes up its predecessor's tags. So If-Match
// becomes a condition of the write itself (see Precondition), and a GET
// needs no hash. The list has no version of its own: its ETag is a hash of
// its encoded data.

// etagOf is the strong ETag of encoded data: 128 bits of its SHA-256, quoted
// as RFC 9110 wants.
func etagOf(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// tutorialETag is the ETag of t, as a GET of it answers.
func tutorialETag(t Tutorial) string {
	return revisionETag(t.Revision())
}

// revisionETag is the ETag of a tutorial at rev.
func revisionETag(rev Revision) string {
	return `"` + strconv.FormatInt(rev.ID, 10) + "-" + strconv.FormatInt(rev.Version, 10) + `"`
}

// etagRevision is the revision an ETag made by revisionETag names. Any
// other tag names none: If-Match compares tags as strings, so only the
// exact form counts ("+7-2" and "07-2" are other tags).
func etagRevision(etag string) (Revision, bool) {
	var rev Revision
	_, err := fmt.Sscanf(etag, `"%d-%d"`, &rev.ID, &rev.Version)
	return rev, err == nil && revisionETag(rev) == etag
}

// writeTutorial writes t in the envelope with its ETag. A GET or HEAD
// whose If-None-Match already names that ETag gets 304 Not Modified instead:
// no body, the ETag kept.
func writeTutorial(w http.ResponseWriter, r *http.Request, status int, t Tutorial) {
	body, etag, err := encodeTutorial(status, t)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeEncoded(w, r, status, body, etag)
}

// encodeTutorial encodes t in the envelope with status, and returns it with
// t's ETag.
func encodeTutorial(status int, t Tutorial) (body []byte, etag string, err error) {
	body, _, err = envelopeBytes(status, t)
	if err != nil {
		return nil, "", err
	}
	return body, tutorialETag(t), nil
}

// encodeEnvelope encodes data in the envelope with status, and returns it
// with a hash of the data as its ETag, for an answer that has no version of
// its own (a page of the list).
func encodeEnvelope(status int, data any) (body []byte, etag string, err error) {
	body, encoded, err := envelopeBytes(status, data)
	if err != nil {
		return nil, "", err
	}
	return body, etagOf(encoded), nil
}

// envelopeBytes encodes data in the envelope with status, the same bytes
// writeEnvelope writes, and returns them with the part of them that is the
// data.
//
// It encodes data once: encoding it for the ETag and then again inside the
// envelope (as json.RawMessage, which encoding/json scans and copies once
// more to check it) showed in the time of every GET.
func envelopeBytes(status int, data any) (body, encoded []byte, err error) {
	const head = `{"data":`
	var buf bytes.Buffer
	buf.WriteString(head)
	if err := appendJSON(&buf, data); err != nil {
		return nil, nil, err
	}
	end := buf.Len()
	buf.WriteString(`,"error":null,"status":`)
	buf.WriteString(strconv.Itoa(status))
	buf.WriteString("}\n")
	body = buf.Bytes()
	return body, body[len(head):end], nil
}

// writeEncoded writes body, made by encodeEnvelope or encodeTutorial, with
// its ETag, or 304 Not Modified as writeTutorial says.
func writeEncoded(w http.ResponseWriter, r *http.Request, status int, body []byte, etag string) {
	h := w.Header()
	h.Set("ETag", etag)
	if status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if header, ok := conditionHeader(r, "If-None-Match"); ok && etagMatches(header, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// ---- Responses kept until the next commit ----

// answerCaches are the answers the GET handlers keep, each until anyone
// commits anything: see internal/cache.
//
// The list's pages are small; its bounds only stop a client that asks for
// endless distinct queries. The tutorials are what takes memory: a server
// that is read more than written ends up holding every one that was asked
// for, up to detailCacheBytes, and the answer to a GET is then a map lookup
// instead of a query and an encoding (BENCHMARKS.md).
type answerCaches struct {
	list   *cache.Cache[ListParams, answer]
	detail *cache.Cache[string, answer] // by slug
}

// The bounds of the caches. The list's stop a client that asks for endless
// distinct queries; the tutorials' hold a library of 10,000 tutorials of
// 2 KB, counted as internal/cache counts them. A bigger one is kept in part.
const (
	listCacheEntries   = 256
	listCacheBytes     = 4 << 20
	detailCacheEntries = 16 << 10
	detailCacheBytes   = 28 << 20
)

func newAnswerCaches(store Store, now func() time.Time) answerCaches {
	return answerCaches{
		list: cache.New(cache.Options[ListParams, answer]{
			Version: store.Version, MaxEntries: listCacheEntries, MaxBytes: listCacheBytes,
			Size: func(p ListParams, a answer) int {
				return len(p.Category) + len(p.Difficulty) + len(p.Query) + len(p.Sort) + a.size()
			},
			IdleAfter: releaseAfter, Now: now,
		}),
		detail: cache.New(cache.Options[string, answer]{
			Version: store.Version, MaxEntries: detailCacheEntries, MaxBytes: detailCacheBytes,
			Size:      func(slug string, a answer) int { return len(slug) + a.size() },
			IdleAfter: releaseAfter, Now: now,
		}),
	}
}

// answer is what a GET handler needs to answer again: the body made by
// encodeEnvelope, its ETag, and the list's Link header. body is shared
// between requests and must never be changed. It is a copy of exactly its
// length: a body fresh from a bytes.Buffer can have twice its length in
// room, which would stay taken for as long as the answer is kept.
type answer struct {
	body []byte
	etag string
	link string
}

// size is the number of bytes a points to.
func (a answer) size() int {
	return cap(a.body) + len(a.etag) + len(a.link)
}

// ifMatch is the store Precondition of r's If-Match header, or nil when it
// has none. Per RFC 9110 section 13.1.1 the write goes ahead only if the
// tutorial exists and the header is "*" or lists its current ETag under the
// strong comparison (a weak W/ tag never matches). A tutorial that does not
// exist matches nothing, so If-Match on it is 412, not 404: the client's
// copy is stale either way. A header that cannot be parsed, or lists no tag
// of ours, matches nothing too: a write the client meant to make
// conditional is never made blindly.
func ifMatch(r *http.Request) *Precondition {
	header, ok := conditionHeader(r, "If-Match")
	if !ok {
		return nil
	}
	if strings.TrimSpace(header) == "*" {
		return &Precondition{AnyRevision: true}
	}
	check := &Precondition{}
	for etag, weak := range entityTags(header) {
		if rev, ok := etagRevision(etag); ok && !weak {
			check.Revisions = append(check.Revisions, rev)
		}
	}
	return check
}

// tutorialMissing is the answer to a write to a tutorial that cannot exist:
// 404, or 412 when the write was conditional on If-Match, as the store
// answers when it finds no row.
func tutorialMissing(r *http.Request) error {
	if ifMatch(r) != nil {
		return ErrEditConflict
	}
	return ErrNotFound
}

// conditionHeader returns all the lines of header name as one list, and
// whether the request had any.
func conditionHeader(r *http.Request, name string) (string, bool) {
	values := r.Header.Values(name)
	return strings.Join(values, ","), len(values) > 0
}

// etagMatches reports whether header, the value of If-None-Match, is "*" or
// lists etag. It compares as RFC 9110 (section 8.8.3.2) says If-None-Match
// does, weakly: a W/ prefix is ignored. (If-Match compares strongly: see
// ifMatch.) A malformed list matches as far as it could be read.
func etagMatches(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for tag := range entityTags(header) {
		if tag == etag {
			return true
		}
	}
	return false
}

// entityTags yields each entity tag that header, the value of If-Match or
// If-None-Match, lists, quotes included, and whether it is weak (W/). A
// malformed list yields the tags before the fault.
func entityTags(header string) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		for header = strings.TrimSpace(header); header != ""; {
			header = strings.TrimLeft(header, " \t,")
			weak := strings.HasPrefix(header, "W/")
			if weak {
				header = header[2:]
			}
			// An entity tag is a quoted string without escapes: it ends at
			// the next quote, and may itself hold commas.
			if !strings.HasPrefix(header, `"`) {
				return
			}
			end := strings.IndexByte(header[1:], '"')
			if end < 0 {
				return
			}
			tag := header[:end+2]
			header = header[end+2:]
			if !yield(tag, weak) {
				return
			}
		}
	}
}

// ---- OpenAPI ----

// openAPIDocument describes every route of addRoutes, for people and for
// tools that generate clients. It is embedded, so the binary serves the
// document of its own version.
//
//go:embed openapi.json
var openAPIDocument []byte

// handleOpenAPI serves openapi.json in the envelope, as section 1 of the
// contract asks of every response: the document is the envelope's data.
// (Tools that want the bare document take .data, or the file in the
// repository.) It needs no key, so that a person can find out how to get
// one.
func handleOpenAPI() http.Handler {
	etag := etagOf(openAPIDocument)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		if header, ok := conditionHeader(r, "If-None-Match"); ok && etagMatches(header, etag) {
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
