package main

// This file holds the middleware every request passes through, outermost
// first in newServer: the log line, panics turned into a 500, and the
// mux's own 404 and 405 put into the envelope.

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
)

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

// answerMuxInEnvelope answers in the envelope where the mux would answer on
// its own (see internal/muxanswers): 404, or 405 with the Allow header set.
func answerMuxInEnvelope(w http.ResponseWriter, r *http.Request, status int) {
	msg := "Not found"
	if status == http.StatusMethodNotAllowed {
		msg = "Method not allowed"
	}
	writeError(w, r, &apiError{status, msg})
}
