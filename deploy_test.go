package main

// This test runs the program as a hosting platform does: no command, PORT
// in the environment.

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestBareCommandServesOnPORT runs the program as a platform would: no
// command, no flags, only PORT and TUTORIALS_DB in the environment. It must
// serve there, and stop cleanly when its context is cancelled (SIGTERM).
func TestBareCommandServesOnPORT(t *testing.T) {
	// Ask the system for a free port. Another process could take it before
	// the server does; that would fail the test loudly, not wrongly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()

	s := startServeWith(t, map[string]string{"PORT": port, "TUTORIALS_DB": filepath.Join(t.TempDir(), "t.db")})
	if !strings.HasSuffix(s.url, ":"+port) {
		t.Fatalf("the server listens at %s, not on PORT %s", s.url, port)
	}
	res, err := http.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d", res.StatusCode)
	}

	if err := s.shutdown(t); err != nil {
		t.Fatalf("run after cancel: %v\n%s", err, s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "msg=stopped") {
		t.Errorf("no stopped line in the log:\n%s", s.stderr)
	}
}
