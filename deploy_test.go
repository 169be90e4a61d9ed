package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAddrSetting: hosting platforms say where to listen with PORT; the
// program's own variable and then the flag beat it.
func TestAddrSetting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"the default", nil, nil, ":8080"},
		{"PORT", map[string]string{"PORT": "3000"}, nil, ":3000"},
		{"TUTORIALS_ADDR beats PORT", map[string]string{"PORT": "3000", "TUTORIALS_ADDR": "127.0.0.1:4000"}, nil, "127.0.0.1:4000"},
		{"-addr beats both", map[string]string{"PORT": "3000", "TUTORIALS_ADDR": "127.0.0.1:4000"},
			[]string{"-addr", "127.0.0.1:5000"}, "127.0.0.1:5000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServeConfig(tt.args, func(name string) string { return tt.env[name] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg.addr); diff != "" {
				t.Errorf("addr (-want +got):\n%s", diff)
			}
		})
	}
}

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
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	env := map[string]string{
		"PORT":         fmt.Sprint(port),
		"TUTORIALS_DB": filepath.Join(t.TempDir(), "t.db"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(name string) string { return env[name] }, &bytes.Buffer{}, &stderr) }()

	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /healthz: %d", res.StatusCode)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the server stopped before it served: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on PORT %d after 10 s: %v\n%s", port, err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // a poll with a deadline: nothing tells us when it listens
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "msg=stopped") {
			t.Errorf("no stopped line in the log:\n%s", stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the server did not stop within 15 s of its context being cancelled")
	}
}
