package https

// The HTTPS of the whole server, flags to handshakes, is tested where the
// server is, in https_test.go and https_acme_test.go at the root. Here is
// only what plain HTTP answers, which needs no server.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// refuse answers as the server does, with the status alone.
func refuse(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) }

// The API over plain HTTP is refused, not redirected: a client that
// followed a redirect would never learn that its key went out in the clear.
func TestPlainHTTPRefusesTheAPI(t *testing.T) {
	for _, path := range []string{"/api", "/api/", "/api/v1/tutorials?page=2"} {
		rec := httptest.NewRecorder()
		answerPlainHTTP("443", []string{"api.tutorials.test"}, refuse).ServeHTTP(rec, httptest.NewRequest("GET", "http://api.tutorials.test"+path, nil))
		if loc := rec.Header().Get("Location"); rec.Code != http.StatusForbidden || loc != "" {
			t.Errorf("%s: %d with Location %q, want 403 without", path, rec.Code, loc)
		}
	}
}

// The 308 goes to a name the certificate covers: the one asked for when
// it does, else the certificate's first name that is no wildcard.
func TestPlainHTTPRedirectsToACertifiedName(t *testing.T) {
	tests := []struct {
		names      []string
		port, host string
		want       string
	}{
		{[]string{"api.tutorials.test", "www.tutorials.test"}, "443", "WWW.tutorials.test:80", "https://www.tutorials.test/p?q=1"},
		{[]string{"api.tutorials.test", "www.tutorials.test"}, "443", "192.0.2.1", "https://api.tutorials.test/p?q=1"},
		{[]string{"api.tutorials.test"}, "8443", "api.tutorials.test", "https://api.tutorials.test:8443/p?q=1"},
		{[]string{"*.tutorials.test"}, "443", "api.tutorials.test", "https://api.tutorials.test/p?q=1"},
		{[]string{"*.tutorials.test", "tutorials.test"}, "443", "a.b.tutorials.test", "https://tutorials.test/p?q=1"},
		{[]string{"*.tutorials.test"}, "443", "192.0.2.1", "https://192.0.2.1/p?q=1"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.names, ",")+" "+tt.host, func(t *testing.T) {
			req := httptest.NewRequest("GET", "http://"+tt.host+"/p?q=1", nil)
			rec := httptest.NewRecorder()
			answerPlainHTTP(tt.port, tt.names, refuse).ServeHTTP(rec, req)
			if got := rec.Header().Get("Location"); rec.Code != http.StatusPermanentRedirect || got != tt.want {
				t.Errorf("%d to %q, want 308 to %q", rec.Code, got, tt.want)
			}
		})
	}
}
