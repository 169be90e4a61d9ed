package main

// These tests hold the HTTPS of internal/https to issue 15: the flags, the
// server's own certificate files (a CA made here, a certificate replaced
// while it runs), what plain HTTP answers, and what stops the server at
// start. The ACME tests, against a real ACME server, are in
// https_acme_test.go.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"tutorials/internal/https"
)

func TestServeConfigHTTPS(t *testing.T) {
	type settings struct {
		Addr  string
		HTTPS https.Config
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want settings
	}{
		{"without HTTPS nothing changes", nil, nil, settings{":8080", https.Config{}}},
		{"-domain serves on 443", []string{"-domain", "API.example.com"}, nil,
			settings{":443", https.Config{Domains: []string{"api.example.com"}, CertDir: "certs"}}},
		{"several names from the environment", nil, map[string]string{"TUTORIALS_DOMAIN": "a.example.com, b.example.com,a.example.com"},
			settings{":443", https.Config{Domains: []string{"a.example.com", "b.example.com"}, CertDir: "certs"}}},
		{"-addr still chooses the HTTPS port", []string{"-domain", "a.example.com", "-addr", ":8443"}, nil,
			settings{":8443", https.Config{Domains: []string{"a.example.com"}, CertDir: "certs"}}},
		{"so does TUTORIALS_ADDR", []string{"-domain", "a.example.com"}, map[string]string{"TUTORIALS_ADDR": "127.0.0.1:9443"},
			settings{"127.0.0.1:9443", https.Config{Domains: []string{"a.example.com"}, CertDir: "certs"}}},
		{"every ACME setting from the environment", nil, map[string]string{"TUTORIALS_DOMAIN": "a.example.com",
			"TUTORIALS_HTTP_ADDR": ":8000", "TUTORIALS_CERT_DIR": "/c", "TUTORIALS_ACME_DIRECTORY": "https://ca.test/dir",
			"TUTORIALS_ACME_EMAIL": "me@example.com"},
			settings{":443", https.Config{HTTPAddr: ":8000", CertDir: "/c", ACMEDirectory: "https://ca.test/dir", ACMEEmail: "me@example.com",
				Domains: []string{"a.example.com"}}}},
		{"flags beat the environment", []string{"-domain", "f.example.com", "-acme-email", "f@example.com"},
			map[string]string{"TUTORIALS_DOMAIN": "e.example.com", "TUTORIALS_ACME_EMAIL": "e@example.com"},
			settings{":443", https.Config{ACMEEmail: "f@example.com", Domains: []string{"f.example.com"}, CertDir: "certs"}}},
		{"certificates beside the database", []string{"-domain", "a.example.com", "-db", "/var/lib/tutorials/tutorials.db"}, nil,
			settings{":443", https.Config{Domains: []string{"a.example.com"}, CertDir: "/var/lib/tutorials/certs"}}},
		{"a database URL has no directory", []string{"-domain", "a.example.com", "-db", "postgres://db.internal/tutorials"}, nil,
			settings{":443", https.Config{Domains: []string{"a.example.com"}, CertDir: "certs"}}},
		{"own certificate files", []string{"-tls-cert", "c.pem", "-tls-key", "k.pem", "-http-addr", ":8000"}, nil,
			settings{":443", https.Config{HTTPAddr: ":8000", CertFile: "c.pem", KeyFile: "k.pem"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeConfig(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got := settings{cfg.addr, cfg.https}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestServeConfigHTTPSUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"-domain", "https://api.example.com"}, `-domain: "https://api.example.com" is not a host name like api.example.com`},
		{[]string{"-domain", "*.example.com"}, `-domain: "*.example.com" is not a host name like api.example.com`},
		{[]string{"-domain", "localhost"}, `-domain: "localhost" is not a host name like api.example.com`},
		{[]string{"-domain", "192.0.2.1"}, `-domain: "192.0.2.1" is not a host name like api.example.com`},
		{[]string{"-domain", "a.example.com", "-tls-cert", "c", "-tls-key", "k"}, "-domain and -tls-cert are two ways to get a certificate: choose one"},
		{[]string{"-tls-cert", "c"}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-key", "k"}, "-tls-cert and -tls-key go together"},
		{[]string{"-cert-dir", "/c"}, "-cert-dir, -acme-directory and -acme-email need -domain"},
		{[]string{"-tls-cert", "c", "-tls-key", "k", "-acme-email", "me@example.com"}, "-cert-dir, -acme-directory and -acme-email need -domain"},
		{[]string{"-http-addr", ":80"}, "-http-addr needs -domain or -tls-cert"},
		{[]string{"-domain", "a.example.com", "-acme-directory", "http://ca.test/dir"}, `-acme-directory must be an https:// URL, not "http://ca.test/dir"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseServeConfig(tt.args, env(nil))
			var usage *usageError
			if !errors.As(err, &usage) || err.Error() != tt.msg {
				t.Errorf("err = %v, want the usage error %q", err, tt.msg)
			}
		})
	}
}

// ---- A CA of the test's own ----

// testCA is a certificate authority made for one test, for certificates
// the test controls to the serial number.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Valid an hour either side of the real time: TLS checks certificates
	// against the real clock, not the test servers' fake one.
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tutorials test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert, key, pool, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate with serial for names (host names or IP
// addresses) and its key, in PEM.
func (ca *testCA) issue(t *testing.T, serial int64, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), NotBefore: ca.cert.NotBefore, NotAfter: ca.cert.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// writeFiles writes each path's contents, in order.
func writeFiles(t *testing.T, pathsAndContents ...any) {
	t.Helper()
	for i := 0; i < len(pathsAndContents); i += 2 {
		if err := os.WriteFile(pathsAndContents[i].(string), pathsAndContents[i+1].([]byte), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// ---- Clients ----

// handshake opens a TLS connection to addr asking for name, as a client
// that trusts roots and speaks TLS up to maxVersion, and returns what was
// agreed.
func handshake(addr, name string, roots *x509.CertPool, maxVersion uint16) (tls.ConnectionState, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion})
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// servedSerial is the serial number of the certificate addr shows for name.
func servedSerial(t *testing.T, addr, name string, roots *x509.CertPool) int64 {
	t.Helper()
	cs, err := handshake(addr, name, roots, 0)
	if err != nil {
		t.Fatalf("handshake for %s: %v", name, err)
	}
	return cs.PeerCertificates[0].SerialNumber.Int64()
}

// httpsGet calls url as a client that trusts roots and offers HTTP/2,
// whatever host the URL names, at addr, and returns the response with its
// body read.
func httpsGet(t *testing.T, addr, url, key string, roots *x509.CertPool) (*http.Response, string) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// checkHTTPSAnswer holds an answer over HTTPS to the issue: 200, over
// HTTP/2, TLS 1.2 or later, with Strict-Transport-Security.
func checkHTTPSAnswer(t *testing.T, res *http.Response, body string) {
	t.Helper()
	type answer struct {
		Status int
		Proto  string
		TLS12  bool
		HSTS   string
	}
	want := answer{200, "HTTP/2.0", true, "max-age=31536000"}
	got := answer{res.StatusCode, res.Proto, res.TLS != nil && res.TLS.Version >= tls.VersionTLS12, res.Header.Get("Strict-Transport-Security")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the answer over HTTPS (-want +got):\n%s\n%s", diff, body)
	}
}

// plainAnswer is what the plain-HTTP listener says to one request.
type plainAnswer struct {
	Request, Location, Body string
	Status                  int
}

// plainAnswers sends the plain-HTTP listener at addr, for host, an API
// call with a key and two requests of a browser, and returns its answers.
func plainAnswers(t *testing.T, addr, host string) []plainAnswer {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var got []plainAnswer
	for _, r := range []struct{ method, path string }{{"GET", "/api/v1/tutorials"}, {"POST", "/api"}, {"GET", "/healthz?probe=1"}} {
		req, err := http.NewRequest(r.method, "http://"+addr+r.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Authorization", "Bearer tut_"+strings.Repeat("0", 64))
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s http://%s%s: %v", r.method, host, r.path, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got = append(got, plainAnswer{r.method + " " + r.path, res.Header.Get("Location"), string(body), res.StatusCode})
	}
	return got
}

// wantPlainAnswers is what plainAnswers must get when the HTTPS listener
// is at httpsAddr, for host.
func wantPlainAnswers(httpsAddr, host string) []plainAnswer {
	_, port, _ := net.SplitHostPort(httpsAddr)
	refused := `{"data":null,"error":"HTTPS required","status":403}` + "\n"
	return []plainAnswer{
		{"GET /api/v1/tutorials", "", refused, 403},
		{"POST /api", "", refused, 403},
		{"GET /healthz?probe=1", "https://" + host + ":" + port + "/healthz?probe=1",
			`{"data":null,"error":"HTTPS required","status":308}` + "\n", 308},
	}
}

// httpAddrLine finds the plain listener's address in the listening line.
var httpAddrLine = regexp.MustCompile(`msg=listening addr=\S+ https=(\S+) http_addr=(\S+)`)

// ---- Certificates of one's own ----

func TestHTTPSWithOwnCertificateFiles(t *testing.T) {
	dir := t.TempDir()
	db, certFile, keyFile := filepath.Join(dir, "t.db"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	key, _, err := runCommand(t, "keys", "create", "-name", "t", "-db", db)
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(key)
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, 1, "api.tutorials.test", "www.tutorials.test")
	writeFiles(t, certFile, certPEM, keyFile, keyPEM)

	s := startServeWith(t, nil, "serve", "-db", db, "-rate", "0", "-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-tls-cert", certFile, "-tls-key", keyFile)
	addr := strings.TrimPrefix(s.url, "http://")
	m := httpAddrLine.FindStringSubmatch(s.stderr.String())
	if m == nil || m[1] != "api.tutorials.test,www.tutorials.test" {
		t.Fatalf("the listening line does not name the certificate's names:\n%s", s.stderr)
	}

	res, body := httpsGet(t, addr, "https://api.tutorials.test/api/v1/tutorials", key, ca.pool)
	checkHTTPSAnswer(t, res, body)
	if _, err := handshake(addr, "api.tutorials.test", ca.pool, tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 handshake succeeded, want TLS 1.2 at least")
	}
	if diff := cmp.Diff(wantPlainAnswers(addr, "www.tutorials.test"), plainAnswers(t, m[2], "www.tutorials.test")); diff != "" {
		t.Errorf("plain HTTP (-want +got):\n%s", diff)
	}
	// A name the certificate does not cover is sent to one it does.
	if got := plainAnswers(t, m[2], "192.0.2.1")[2].Location; !strings.HasPrefix(got, "https://api.tutorials.test:") {
		t.Errorf("plain HTTP for an address sends to %q, want the certificate's first name", got)
	}

	// Renewed, as certbot would: the next connection has the new one.
	certPEM, keyPEM = ca.issue(t, 2, "api.tutorials.test")
	writeFiles(t, keyFile, keyPEM, certFile, certPEM)
	if got := servedSerial(t, addr, "api.tutorials.test", ca.pool); got != 2 {
		t.Errorf("after the files were replaced the server shows serial %d, want 2", got)
	}

	// A pair that does not match (a renewer half-way) is refused, once in
	// the log, and the last good one stays.
	certPEM, _ = ca.issue(t, 3, "api.tutorials.test")
	writeFiles(t, certFile, certPEM)
	for range 2 {
		if got := servedSerial(t, addr, "api.tutorials.test", ca.pool); got != 2 {
			t.Errorf("with a mismatched pair the server shows serial %d, want the last good one, 2", got)
		}
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}
	logs := s.stderr.String()
	for line, want := range map[string]int{"msg=\"certificate files reloaded\" names=api.tutorials.test": 1,
		"level=ERROR msg=\"new certificate files not loaded, still serving the last good ones\"": 1, "handshake": 0} {
		if n := strings.Count(logs, line); n != want {
			t.Errorf("%d lines with %q in the log, want %d:\n%s", n, line, want, logs)
		}
	}
}

// What can serve nothing stops the server at start, with one line and
// exit 1 (not a usage error): it is no flag that is wrong but the world.
func TestHTTPSFailuresAtStart(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "a-file")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca := newTestCA(t)
	certPEM, _ := ca.issue(t, 1, "api.tutorials.test")
	_, otherKey := ca.issue(t, 2, "api.tutorials.test")
	writeFiles(t, aFile, []byte("x"), certFile, certPEM, keyFile, otherKey)
	acme := []string{"-domain", "api.tutorials.test", "-acme-directory", "https://127.0.0.1:1/dir"}
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"a certificate directory that cannot be made", append([]string{"-cert-dir", filepath.Join(aFile, "certs")}, acme...),
			"certificate directory: mkdir " + aFile + ": not a directory"},
		{"a certificate directory that is a file", append([]string{"-cert-dir", aFile}, acme...),
			"certificate directory: mkdir " + aFile + ": not a directory"},
		{"a missing certificate file", []string{"-tls-cert", filepath.Join(dir, "none.pem"), "-tls-key", keyFile},
			"-tls-cert: open " + filepath.Join(dir, "none.pem") + ": no such file or directory"},
		{"a key that is not the certificate's", []string{"-tls-cert", certFile, "-tls-key", keyFile},
			"-tls-cert " + certFile + " and -tls-key: tls: private key does not match public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "-db", filepath.Join(t.TempDir(), "t.db"), "-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"}, tt.args...)
			// A server that starts after all is stopped as soon as it says
			// so, and fails the test rather than hang it.
			s, log := newServing()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-log.addr:
					cancel()
				case <-ctx.Done():
				}
			}()
			err := run(ctx, args, env(nil), io.Discard, log)
			if err == nil || errors.As(err, new(*usageError)) || err.Error() != tt.msg {
				t.Fatalf("run = %v, want the failure %q (exit 1)\n%s", err, tt.msg, s.stderr)
			}
		})
	}
}

// An ACME server that does not answer is one line in the log, and the
// server goes on answering plain HTTP; the next attempt is minutes away,
// not at the next handshake.
func TestHTTPSWithAnACMEServerThatDoesNotAnswer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	down := freeAddr(t)
	s := startServeWith(t, nil, "serve", "-db", db, "-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-domain", "api.tutorials.test", "-acme-directory", "https://"+down+"/dir")
	addr := strings.TrimPrefix(s.url, "http://")
	failed := regexp.MustCompile(`level=ERROR msg="certificate not obtained" name=api.tutorials.test error=".*connection refused" retry_in=2m0s hint="the ACME server did not answer`)
	waitForLog(t, s.stderr, failed, 1)
	for range 3 {
		if _, err := handshake(addr, "api.tutorials.test", nil, 0); err == nil {
			t.Fatal("a handshake succeeded without a certificate")
		}
	}
	m := httpAddrLine.FindStringSubmatch(s.stderr.String())
	if diff := cmp.Diff(wantPlainAnswers(addr, "api.tutorials.test"), plainAnswers(t, m[2], "api.tutorials.test")); diff != "" {
		t.Errorf("plain HTTP (-want +got):\n%s", diff)
	}
	if err := s.shutdown(t); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(s.stderr.String(), `msg="certificate not obtained"`); n != 1 {
		t.Errorf("%d failure lines, want 1:\n%s", n, s.stderr)
	}
}

// freeAddr is a loopback address with a port nothing listens on, for now.
// Another process could take it before the test uses it: that fails a
// test loudly, never wrongly.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitForLog polls log until re matches n times, for two minutes at most.
func waitForLog(t *testing.T, log fmt.Stringer, re *regexp.Regexp, n int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); len(re.FindAllString(log.String(), -1)) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("no %d lines like %s in the log after two minutes:\n%s", n, re, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
