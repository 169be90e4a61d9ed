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
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"tutorials/internal/validator"
)

// This file speaks HTTP: the routes, the handlers, the envelope every
// response is wrapped in, and JSON in and out.

// server is the whole HTTP handler of the program, with the answers its
// handlers keep, so that runServe can let go of them when the server goes
// idle.
type server struct {
	http.Handler
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
	answers := newAnswerCaches()
	auth := newAuthenticator(cfg, store, usage, now)
	mux := http.NewServeMux()
	addRoutes(mux, store, auth, answers, now)
	var h http.Handler = envelopeFallback(mux)
	h = allowCORS(cfg.corsOrigins, h)
	h = recoverPanics(logger, h)
	h = logRequests(logger, h)
	return &server{Handler: h, answers: answers}
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
	mux.Handle("POST /api/v1/tutorials", auth.requireKey(scopeWrite, answers.clearAfter(handleCreateTutorial(store, now))))
	mux.Handle("PATCH /api/v1/tutorials/{slug}", auth.requireKey(scopeWrite, answers.clearAfter(handlePatchTutorial(store, now))))
	mux.Handle("PUT /api/v1/tutorials/{slug}", auth.requireKey(scopeWrite, answers.clearAfter(handleReplaceTutorial(store, now))))
	mux.Handle("DELETE /api/v1/tutorials/{slug}", auth.requireKey(scopeWrite, answers.clearAfter(handleDeleteTutorial(store))))
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
// cause of a 500.
type requestInfo struct {
	id    string
	keyID int64
	err   error

	// version is the Store.DataVersion the key check read, when hasVersion:
	// the handler's caches use the same one rather than ask again (see
	// requestVersion).
	version    int64
	hasVersion bool
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
// outside envelopeFallback and the key checks, because a preflight carries
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

// envelopeFallback answers in the envelope where ServeMux would answer on its
// own, in plain text: an unknown path (404) or a known path with a method it
// does not take (405, with Allow).
func envelopeFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// ServeMux would redirect a path like /api//v1/ to its clean form.
		// An API client wants an answer, not a redirect: such a path names
		// nothing.
		if r.URL.Path != cleanPath(r.URL.Path) {
			writeError(w, r, &apiError{http.StatusNotFound, "Not found"})
			return
		}
		// Handler only looks the route up; ServeHTTP looks it up again and
		// fills in r.PathValue, which Handler does not. The second lookup
		// is a few hundred nanoseconds: a price worth a mux that never
		// answers outside the envelope.
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, r, &apiError{http.StatusMethodNotAllowed, "Method not allowed"})
			return
		}
		writeError(w, r, &apiError{http.StatusNotFound, "Not found"})
	})
}

// cleanPath is path with "." and ".." and doubled slashes resolved, the way
// ServeMux sees it, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	// Almost every path is clean already: one with no "//" and no segment
	// that starts with "." has nothing to resolve, and needs none of the
	// allocations below.
	if strings.HasPrefix(p, "/") && !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p
	}
	c := (&url.URL{Path: p}).JoinPath().Path // JoinPath cleans
	if strings.HasSuffix(p, "/") && !strings.HasSuffix(c, "/") {
		c += "/"
	}
	return c
}

// allowedMethods lists the methods the mux has a route for at r's path.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost,
		http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return allow
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

// handleListTutorials answers a page of the list, from cache when it can.
func handleListTutorials(store Store, cache *responseCache) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The whole query string is the key: the page, its Link header and
		// every parameter follow from it. Only a query that passed
		// parseListQuery is ever stored.
		version, err := requestVersion(r, store)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if c, ok := cache.get(r.URL.RawQuery, version); ok {
			w.Header().Set("Link", c.link)
			writeEncoded(w, r, http.StatusOK, c.body, c.etag)
			return
		}
		p, err := parseListQuery(r.URL.Query())
		if err != nil {
			writeError(w, r, err)
			return
		}
		list, total, err := store.ListTutorials(r.Context(), p)
		if err != nil {
			writeError(w, r, err)
			return
		}
		totalPages := (total + p.PerPage - 1) / p.PerPage
		link := pageLinks(r.URL, p.Page, totalPages)
		body, etag, err := encodeEnvelope(http.StatusOK, tutorialPage{
			Tutorials:  list,
			Page:       p.Page,
			PerPage:    p.PerPage,
			Total:      total,
			TotalPages: totalPages,
		})
		if err != nil {
			writeError(w, r, err)
			return
		}
		cache.put(r.URL.RawQuery, version, cachedResponse{body: body, etag: etag, link: link})
		w.Header().Set("Link", link)
		writeEncoded(w, r, http.StatusOK, body, etag)
	})
}

// pageLinks is the Link header of a page of the list (RFC 8288): first,
// prev, next and last, each the request's own URL with only page changed,
// so that search, filters, sort, per_page and any other parameter carry
// over. The links are relative to the server, so that they stay right
// behind a proxy that rewrites the host.
//
// There is always a first and a last page: an empty list has one, empty,
// page. No prev on page 1, no next on the last page. A page past the end
// has no next, and its prev is the last page, back where the items are.
func pageLinks(u *url.URL, page, totalPages int64) string {
	last := max(totalPages, 1)
	link := func(n int64, rel string) string {
		q := u.Query()
		q.Set("page", strconv.FormatInt(n, 10))
		return "<" + u.EscapedPath() + "?" + q.Encode() + `>; rel="` + rel + `"`
	}
	links := []string{link(1, "first")}
	if page > 1 {
		links = append(links, link(min(page-1, last), "prev"))
	}
	if page < last {
		links = append(links, link(page+1, "next"))
	}
	links = append(links, link(last, "last"))
	return strings.Join(links, ", ")
}

// handleGetTutorial answers one tutorial, from cache when it can.
func handleGetTutorial(store Store, cache *responseCache) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slug := r.PathValue("slug")
		version, err := requestVersion(r, store)
		if err != nil {
			writeError(w, r, err)
			return
		}
		// Only tutorials that were found are kept, so a slug found here
		// needs no more checking.
		if c, ok := cache.get(slug, version); ok {
			writeEncoded(w, r, http.StatusOK, c.body, c.etag)
			return
		}
		if !validSlug(slug) {
			writeError(w, r, ErrNotFound)
			return
		}
		t, err := store.TutorialBySlug(r.Context(), slug)
		if err != nil {
			writeError(w, r, err)
			return
		}
		body, etag, err := encodeTutorial(http.StatusOK, t)
		if err != nil {
			writeError(w, r, err)
			return
		}
		cache.put(slug, version, cachedResponse{body: body, etag: etag})
		writeEncoded(w, r, http.StatusOK, body, etag)
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

// answerCaches are the answers the GET handlers keep: see responseCache.
//
// The list's pages are small; its limits only stop a client that asks for
// endless distinct queries. The tutorials are what takes memory: a server
// that is read more than written ends up holding every one that was asked
// for, up to detailCacheBytes, and the answer to a GET is then a map lookup
// instead of a query and an encoding: 7 µs of handler time instead of 26,
// and nearly three times the requests a second (BENCHMARKS.md). That
// memory is counted in memoryLimit (main.go), and given back when the
// server goes idle.
type answerCaches struct {
	list, detail *responseCache
}

// The bounds of the cache of tutorials: a library of 16,000 tutorials of
// 1.5 KB, or 10,000 of 2.5 KB. A bigger one is kept in part.
const (
	detailCacheEntries = 16 << 10
	detailCacheBytes   = 24 << 20
)

func newAnswerCaches() answerCaches {
	return answerCaches{
		list:   &responseCache{maxEntries: 256, maxBytes: 4 << 20},
		detail: &responseCache{maxEntries: detailCacheEntries, maxBytes: detailCacheBytes},
	}
}

// clear lets go of every answer kept.
func (a answerCaches) clear() {
	a.list.clear()
	a.detail.clear()
}

// clearAfter runs next, a handler that writes, then lets go of every answer
// kept. Whatever the write changed, it made them all stale: the next read
// would start the caches afresh anyway, but until then their memory stays
// taken, and under a stream of writes with no reads between, that was a
// full cache's worth (24 MiB in the bench) held for nothing.
func (a answerCaches) clearAfter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		a.clear()
	})
}

// requestVersion is the Store.DataVersion that r's key check read (see
// authenticator.lookup), or, for a request that had none, a fresh one.
// Each asking is a read of a file, so once per request is enough.
func requestVersion(r *http.Request, store Store) (int64, error) {
	if info := requestInfoFrom(r.Context()); info.hasVersion {
		return info.version, nil
	}
	return store.Version(r.Context())
}

// responseCache keeps encoded 200 responses to GETs, by a key the handler
// chooses, as of one Store.DataVersion: the same rule as keyCache in
// auth.go. Any commit to the database, by this process or another, changes
// the version, and the next put starts the cache afresh; an entry is never
// served at a version other than the one it was read at. So a response from
// the cache is what the database would have answered, and its ETag is the
// one a fresh encoding would have.
//
// The version must be read before the data, as requestVersion's is: an
// entry may then be newer than its version, never older.
//
// It is bounded in entries and in bytes. When full it keeps what it holds
// and stores nothing more until the next commit empties it. Evicting
// instead would be worse for a client that reads every page in turn (a
// backup script, a crawler): with more pages than room, each entry would be
// gone before its turn came again.
type responseCache struct {
	maxEntries, maxBytes int

	mu      sync.Mutex
	version int64
	entries map[string]cachedResponse
	bytes   int // of every body held
}

// cachedResponse is what a handler needs to answer again: the body made by
// encodeEnvelope, its ETag, and the list's Link header.
// body is shared between requests and must never be changed.
type cachedResponse struct {
	body []byte
	etag string
	link string
}

// get returns the response kept under key, if it was read at version.
func (c *responseCache) get(key string, version int64) (cachedResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return cachedResponse{}, false
	}
	resp, ok := c.entries[key]
	return resp, ok
}

// put keeps resp, read at version, under key, if there is room.
func (c *responseCache) put(key string, version int64, resp cachedResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || c.entries == nil {
		c.version = version
		c.entries = make(map[string]cachedResponse)
		c.bytes = 0
	}
	if _, ok := c.entries[key]; ok || len(c.entries) >= c.maxEntries || c.bytes+len(resp.body) > c.maxBytes {
		return
	}
	// A body fresh from a bytes.Buffer can have up to twice its length in
	// room, which would stay taken for as long as the entry: keep a copy
	// of exactly its length.
	resp.body = bytes.Clone(resp.body)
	c.entries[key] = resp
	c.bytes += len(resp.body)
}

// clear empties the cache, and lets its memory go.
func (c *responseCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
	c.bytes = 0
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
