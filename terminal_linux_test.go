package main

// Tests of what serve does on a terminal, where a person reads stderr: the
// only place the first key may be shown. They need a real pseudo-terminal,
// which this file opens the Linux way. They run on SQLite only: their
// subject is the terminal; the keys serve makes or refuses are the store's,
// which the matrix's tests of serve and the keys commands cover.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openTerminal opens a pseudo-terminal: what a program writes to tty, a
// terminal as far as it can tell, comes out of pty for the test to read.
func openTerminal(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	var n, unlock uint32
	for _, op := range []struct {
		req uintptr
		arg *uint32
	}{{syscall.TIOCGPTN, &n}, {syscall.TIOCSPTLCK, &unlock}} {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, pty.Fd(), op.req, uintptr(unsafe.Pointer(op.arg))); errno != 0 {
			t.Fatalf("set up the pseudo-terminal: %v", errno)
		}
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return pty, tty
}

// startServeOnTerminal runs "tutorials serve" on db with its stderr on a
// terminal, and waits until it listens. What it printed is in stderr.
func startServeOnTerminal(t *testing.T, db string) *serving {
	t.Helper()
	pty, tty := openTerminal(t)
	s, log := newServing()
	go io.Copy(log, pty) // until the terminal closes
	return s.start(t, nil, tty, log, "-addr", "127.0.0.1:0", "-db", db)
}

func TestServeBootstrapsAKeyOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	s := startServeOnTerminal(t, db)
	keys := keyInLog.FindAllString(s.stderr.String(), -1)
	if len(keys) != 1 {
		t.Fatalf("want the new key printed once, got %d:\n%s", len(keys), s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "it will not be shown again") {
		t.Errorf("no warning that the key is shown once:\n%s", s.stderr)
	}

	req, _ := http.NewRequest("GET", s.url+"/api/v1/tutorials", nil)
	req.Header.Set("Authorization", "Bearer "+keys[0])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("the bootstrap key got %d, want 200", res.StatusCode)
	}
	if err := s.shutdown(t); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	// The key was used, so the shutdown saved last_used_at.
	out, _, err := runCommand(t, "keys", "list", "-db", db)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "default") || strings.Contains(out, "never") {
		t.Errorf("after shutdown, last_used_at is not saved:\n%s", out)
	}

	// A second start finds an active key and prints none.
	again := startServeOnTerminal(t, db)
	if strings.Contains(again.stderr.String(), "tut_") {
		t.Errorf("the second start printed a key:\n%s", again.stderr)
	}
}

func TestServeBootstrapsAgainWhenEveryKeyIsRevoked(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	if _, _, err := runCommand(t, "keys", "create", "-db", db, "-name", "only"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCommand(t, "keys", "revoke", "-db", db, "1"); err != nil {
		t.Fatal(err)
	}
	s := startServeOnTerminal(t, db)
	if n := len(keyInLog.FindAllString(s.stderr.String(), -1)); n != 1 {
		t.Errorf("printed %d keys, want 1:\n%s", n, s.stderr)
	}
}

// A server that cannot listen makes no key: one shown by a server that then
// fails to start would never be shown again, since a key would exist.
func TestServeThatCannotListenMakesNoKey(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	db := filepath.Join(t.TempDir(), "t.db")
	pty, tty := openTerminal(t)
	var shown syncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&shown, pty)
		close(copied)
	}()
	err = run(context.Background(), []string{"-addr", taken.Addr().String(), "-db", db}, env(nil), io.Discard, tty)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve on a taken port: %v, want a failure to listen", err)
	}
	tty.Close()
	<-copied
	if strings.Contains(shown.String(), "tut_") {
		t.Errorf("a server that could not start showed a key:\n%s", shown.String())
	}
	out, _, err := runCommand(t, "keys", "list", "-db", db)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Errorf("a server that could not start made a key:\n%s", out)
	}
}
