package main

// These tests run the program as users do: built with go build, started as
// a process, stopped with a signal. They prove what only a real process can:
// that a 2xx survives kill -9, that SIGTERM drains and saves, and that what
// another process writes is seen at once.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds the program into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the program; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "tutorials")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// createKey runs "tutorials keys create" on db and returns the key.
func createKey(t *testing.T, bin, db string) string {
	t.Helper()
	out, err := exec.Command(bin, "keys", "create", "-name", "test", "-db", db).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("keys create: %v: %s", err, bytes.TrimSpace(exit.Stderr))
		}
		t.Fatalf("keys create: %v", err)
	}
	key := strings.TrimSpace(string(out))
	if !keyFormat.MatchString(key) {
		t.Fatalf("keys create printed %q, not a key", key)
	}
	return key
}

// process is a running server.
type process struct {
	cmd  *exec.Cmd
	addr string        // host:port it listens on
	logs *syncBuffer   // its stderr
	done chan struct{} // closed once the process has exited
	err  error         // the result of Wait, once done is closed
}

// startServer starts the server on db at a port the system chooses, and
// returns once its log says where it listens.
func startServer(t *testing.T, bin, db string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-addr", "127.0.0.1:0", "-db", db, "-rate", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan struct{})}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})

	addr := make(chan string, 1)
	go func() {
		// Read every line, to the end: a server whose stderr is not drained
		// blocks on its next log line.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.Write(append(sc.Bytes(), '\n'))
			if m := listeningLine.FindSubmatch(sc.Bytes()); m != nil {
				addr <- string(m[1])
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.addr = <-addr:
		return p
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not log where it listens:\n%s", p.logs)
	}
	return nil
}

// post sends a create and returns the status, or an error when the
// connection failed (as it does once the server is killed).
func (p *process) post(client *http.Client, key, slug string) (int, error) {
	req, err := http.NewRequest("POST", "http://"+p.addr+"/api/v1/tutorials",
		strings.NewReader(fmt.Sprintf(`{"title":"t","slug":%q}`, slug)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, err // the body was cut: the write is not acknowledged
	}
	return res.StatusCode, nil
}

func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	bin := buildBinary(t) // once: both engines run the same program
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		key := createKey(t, bin, db)
		p := startServer(t, bin, db)

		const writers = 4
		var (
			mu    sync.Mutex
			acked []string
		)
		enough := make(chan struct{}) // closed once some writes are acknowledged
		var once sync.Once
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 30 * time.Second}
		for w := range writers {
			wg.Go(func() {
				for i := 0; ; i++ {
					slug := fmt.Sprintf("w%d-%d", w, i)
					status, err := p.post(client, key, slug)
					if err != nil {
						return // the server is gone
					}
					if status != http.StatusCreated {
						t.Errorf("%s: status %d", slug, status)
						return
					}
					mu.Lock()
					acked = append(acked, slug)
					if len(acked) >= 100 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			})
		}
		select {
		case <-enough:
		case <-time.After(2 * time.Minute):
			t.Fatal("no 100 creates acknowledged in two minutes")
		}
		// Mid-load: the writers are still sending.
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		<-p.done

		// Every create that got its 201 is there after a restart.
		p = startServer(t, bin, db)
		mu.Lock()
		defer mu.Unlock()
		var missing []string
		for _, slug := range acked {
			req, _ := http.NewRequest("GET", "http://"+p.addr+"/api/v1/tutorials/"+slug, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				missing = append(missing, slug)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%d of %d acknowledged creates lost: %v", len(missing), len(acked), missing)
		}
		stop(t, p)

		if e == sqliteEngine { // SQLite's own check of the file the kill left
			integrityCheck(t, db)
		}
		t.Logf("%d creates acknowledged before the kill, all present", len(acked))
	})
}

// stop sends SIGTERM and waits for the process to exit 0.
func stop(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM:\n%s", p.logs)
	}
}

func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	bin := buildBinary(t) // once: both engines run the same program
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		key := createKey(t, bin, db)
		p := startServer(t, bin, db)

		// Each request asks "Expect: 100-continue" and holds back its body. The
		// server says "100 Continue" only once the handler reads the body: then
		// the request is certainly in flight, past its key, when SIGTERM comes.
		const inFlight = 3
		type pending struct {
			conn net.Conn
			r    *bufio.Reader
			body string
		}
		var reqs []pending
		for i := range inFlight {
			conn, err := net.Dial("tcp", p.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			body := fmt.Sprintf(`{"title":"t","slug":"in-flight-%d"}`, i)
			fmt.Fprintf(conn, "POST /api/v1/tutorials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", key, len(body))
			r := bufio.NewReader(conn)
			res, err := http.ReadResponse(r, nil)
			if err != nil || res.StatusCode != http.StatusContinue {
				t.Fatalf("request %d: %v, %v; want 100 Continue", i, res, err)
			}
			reqs = append(reqs, pending{conn, r, body})
		}

		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for i, req := range reqs {
			if _, err := io.WriteString(req.conn, req.body); err != nil {
				t.Fatalf("request %d: sending the body after SIGTERM: %v", i, err)
			}
			res, err := http.ReadResponse(req.r, nil)
			if err != nil {
				t.Fatalf("request %d: no response after SIGTERM: %v", i, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Errorf("request %d: %d, want 201", i, res.StatusCode)
			}
		}
		select {
		case <-p.done:
			if p.err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", p.err, p.logs)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30 s after SIGTERM:\n%s", p.logs)
		}

		// The key was used: its last_used_at reached the database on the way out
		// (the server saves it once a minute, and this run was shorter).
		store, err := OpenStore(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		keys, err := store.APIKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].LastUsedAt.IsZero() {
			t.Errorf("last_used_at not saved at shutdown: %+v", keys)
		}
		list, err := store.ListTutorials(context.Background(), ListParams{Page: 1, PerPage: 10, Sort: "-published_at"})
		page, total := list.Tutorials, list.Total
		if err != nil {
			t.Fatal(err)
		}
		if total != inFlight {
			t.Errorf("%d tutorials on disk, want the %d in flight: %v", total, inFlight, slugs(page))
		}
	})
}

// The server keeps answers and keys in memory until anyone writes. Here
// the writes come from other processes, as they would from "tutorials keys
// revoke", the sqlite3 shell or psql: this test process edits a tutorial through a
// Store of its own, and a second run of the program revokes a key. The
// server's very next request must see each.
func TestWritesOfAnotherProcessAreSeenOnTheNextRequest(t *testing.T) {
	bin := buildBinary(t) // once: both engines run the same program
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		writer := createKey(t, bin, db)
		reader := createKey(t, bin, db)
		p := startServer(t, bin, db)
		client := &http.Client{Timeout: 10 * time.Second}
		if status, err := p.post(client, writer, "shared"); err != nil || status != http.StatusCreated {
			t.Fatalf("create: %d, %v", status, err)
		}
		get := func(path string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", "http://"+p.addr+path, nil)
			req.Header.Set("Authorization", "Bearer "+reader)
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			return res.StatusCode, string(body)
		}
		for range 2 { // the second answers come from memory
			for _, path := range []string{"/api/v1/tutorials/shared", "/api/v1/tutorials"} {
				if status, body := get(path); status != http.StatusOK || !strings.Contains(body, `"title":"t"`) {
					t.Fatalf("GET %s: %d %s", path, status, body)
				}
			}
		}

		store, err := OpenStore(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		change := TutorialPatch{Title: Some("Changed elsewhere")}
		if _, err := store.PatchTutorial(context.Background(), "shared", change, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/api/v1/tutorials/shared", "/api/v1/tutorials"} {
			if status, body := get(path); status != http.StatusOK || !strings.Contains(body, `"title":"Changed elsewhere"`) {
				t.Errorf("GET %s after another process's edit: %d %s", path, status, body)
			}
		}

		keys, err := store.APIKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		for _, k := range keys {
			if strings.HasPrefix(reader, k.Prefix) {
				id = k.ID
			}
		}
		if out, err := exec.Command(bin, "keys", "revoke", "-db", db, fmt.Sprint(id)).CombinedOutput(); err != nil {
			t.Fatalf("keys revoke %d: %v\n%s", id, err, out)
		}
		status, body := get("/api/v1/tutorials/shared")
		if want := `{"data":null,"error":"Invalid or inactive API key","status":401}`; status != http.StatusUnauthorized || strings.TrimSpace(body) != want {
			t.Errorf("GET with the key revoked by another process: %d %s, want 401 %s", status, body, want)
		}
	})
}
