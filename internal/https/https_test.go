package https

// The HTTPS of the whole server, flags to handshakes, is tested where the
// server is, in https_test.go and https_acme_test.go at the root. Here is
// only what plain HTTP answers, which needs no server.

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// autocert renews in silence and fails in silence: the watch says when a
// certificate was renewed, and, once a day, when its renewal is overdue,
// with time left to mend it.
func TestCertWatchSaysWhenRenewalIsLate(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := func(notBefore time.Time, lifetime time.Duration) *x509.Certificate {
		return &x509.Certificate{NotBefore: notBefore, NotAfter: notBefore.Add(lifetime)}
	}
	day := 24 * time.Hour
	ninety := cert(start, 90*day) // renewed in its last 30 days: late with 20 left
	six := cert(start, 6*day)     // in its last 2 days: late with 32 hours left
	renewedNinety := cert(start.Add(65*day), 90*day)
	tests := []struct {
		name  string
		looks []*x509.Certificate
		at    []time.Time
		want  []finding
	}{
		{"a fresh certificate, then in its renewal window", []*x509.Certificate{ninety, ninety, ninety},
			[]time.Time{start.Add(day), start.Add(60 * day), start.Add(69*day + 23*time.Hour)},
			[]finding{nothingNew, nothingNew, nothingNew}},
		{"late: said once a day, not every hour", []*x509.Certificate{ninety, ninety, ninety, ninety},
			[]time.Time{start.Add(70*day + time.Hour), start.Add(70*day + 2*time.Hour), start.Add(71*day + time.Hour), start.Add(71*day + 5*time.Hour)},
			[]finding{late, nothingNew, late, nothingNew}},
		{"renewed, after being late", []*x509.Certificate{ninety, renewedNinety, renewedNinety},
			[]time.Time{start.Add(75 * day), start.Add(76 * day), start.Add(77 * day)},
			[]finding{late, renewed, nothingNew}},
		{"a six-day certificate", []*x509.Certificate{six, six},
			[]time.Time{start.Add(4*day + 15*time.Hour), start.Add(4*day + 17*time.Hour)},
			[]finding{nothingNew, late}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &certWatch{notAfter: tt.looks[0].NotAfter}
			var got []finding
			for i, leaf := range tt.looks {
				got = append(got, w.look(leaf, tt.at[i]))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
		})
	}
}
