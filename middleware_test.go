package main

// These tests hold the middleware every request passes: the mux's own
// answers in the envelope, panics, the request id, and the log line of a
// client that hangs up.

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

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
	if !strings.Contains(logs.String(), "boom at a secret place") || !strings.Contains(logs.String(), "TestPanicBecomesA500Envelope.func1") {
		t.Errorf("the log lacks the panic and its stack:\n%s", logs)
	}
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
