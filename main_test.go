package main

// These tests run the program as main does, through run, against a
// temporary database.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"tutorials/internal/logbuf"

	"github.com/google/go-cmp/cmp"
)

// env returns a getenv that knows only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// runCommand runs the program with args and returns what it printed.
func runCommand(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, env(nil), &out, &errOut)
	return out.String(), errOut.String(), err
}

// keyFormat is a key as the contract states it; keyInLog finds one in a
// server's log.
var (
	keyFormat = regexp.MustCompile(`^tut_[0-9a-f]{64}$`)
	keyInLog  = regexp.MustCompile(`tut_[0-9a-f]{64}`)
)

func TestKeysCreatePrintsOnlyTheKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		stdout, _, err := runCommand(t, "keys", "create", "-name", "laptop", "-db", db)
		if err != nil {
			t.Fatal(err)
		}
		key := strings.TrimSuffix(stdout, "\n")
		if !keyFormat.MatchString(key) {
			t.Fatalf("stdout = %q, want one key and a newline", stdout)
		}

		// The database holds the hash and the prefix, never the key.
		conn := openSQL(t, db)
		var stored struct {
			name, prefix, scope string
			hash                []byte
		}
		err = conn.QueryRow(`SELECT name, prefix, scope, hash FROM api_keys`).Scan(&stored.name, &stored.prefix, &stored.scope, &stored.hash)
		if err != nil {
			t.Fatal(err)
		}
		if stored.name != "laptop" || stored.prefix != key[:12] || stored.scope != "write" || !bytes.Equal(stored.hash, hashKey(key)) {
			t.Errorf("stored %+v for key %s", stored, key)
		}
		// Every column a key's text could hide in, the hash as hex.
		var dump strings.Builder
		rows, err := conn.Query(`SELECT name, prefix, hash, scope FROM api_keys`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var name, prefix, scope string
			var hash []byte
			if err := rows.Scan(&name, &prefix, &hash, &scope); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&dump, "%s %s %x %s\n", name, prefix, hash, scope)
		}
		rows.Close()
		if strings.Contains(strings.ToLower(dump.String()), key[len(keyPrefix):]) {
			t.Errorf("the key is stored in the clear: %s", dump.String())
		}
	})
}

func TestKeysListAndRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		writeKey, _, err := runCommand(t, "keys", "create", "-db", db, "-name", "ci bot")
		if err != nil {
			t.Fatal(err)
		}
		readKey, _, err := runCommand(t, "keys", "create", "-db", db, "-name", "dashboard", "-scope", "read", "-rate", "2.5", "-burst", "5")
		if err != nil {
			t.Fatal(err)
		}
		seedKey, _, err := runCommand(t, "keys", "create", "-db", db, "-name", "seeder", "-rate", "0")
		if err != nil {
			t.Fatal(err)
		}
		if out, _, err := runCommand(t, "keys", "revoke", "-db", db, "1"); err != nil || out != "revoked key 1\n" {
			t.Fatalf("revoke: %q, %v", out, err)
		}
		if out, _, err := runCommand(t, "keys", "revoke", "-db", db, "1"); err != nil || out != "key 1 was already revoked\n" {
			t.Errorf("revoke again: %q, %v; want the news that it was already revoked, and success", out, err)
		}

		out, _, err := runCommand(t, "keys", "list", "-db", db)
		if err != nil {
			t.Fatal(err)
		}
		// The command runs on the real clock, which no test can know: a time
		// in the table is checked for its form, not its value.
		timestamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
		var got [][]string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			fields := regexp.MustCompile(`\s{2,}`).Split(line, -1)
			for i, f := range fields {
				if timestamp.MatchString(f) {
					fields[i] = "<time>"
				}
			}
			got = append(got, fields)
		}
		want := [][]string{
			{"ID", "NAME", "PREFIX", "SCOPE", "LIMITS", "ACTIVE", "CREATED", "LAST USED"},
			{"1", "ci bot", writeKey[:12], "write", "server default", "no", "<time>", "never"},
			{"2", "dashboard", readKey[:12], "read", "2.5/s burst 5", "yes", "<time>", "never"},
			{"3", "seeder", seedKey[:12], "write", "no limit", "yes", "<time>", "never"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("keys list (-want +got):\n%s\n%s", diff, out)
		}

		_, _, err = runCommand(t, "keys", "revoke", "-db", db, "99")
		if err == nil || err.Error() != "no key with id 99" || errors.As(err, new(*usageError)) {
			t.Errorf("revoke of a missing key: %v, want a plain failure naming it", err)
		}
	})
}

// SQLite only: these are mistakes of the command line, whatever the database.
func TestUsageErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate" (try tutorials help)`},
		{[]string{"keys"}, "keys needs a subcommand: create, set-limit, list or revoke"},
		{[]string{"keys", "delete"}, `unknown keys subcommand "delete": want create, set-limit, list or revoke`},
		{[]string{"keys", "create", "-db", db}, "keys create needs -name"},
		{[]string{"keys", "create", "-db", db, "-name", "x", "-scope", "admin"}, `-scope must be read or write, not "admin"`},
		{[]string{"keys", "create", "-db", db, "-bogus"}, "keys create: flag provided but not defined: -bogus"},
		{[]string{"keys", "create", "-db", db, "-name", "x", "-rate", "5"}, "-rate needs -burst, the requests a key may make at once"},
		{[]string{"keys", "create", "-db", db, "-name", "x", "-burst", "5"}, "-burst needs -rate"},
		{[]string{"keys", "create", "-db", db, "-name", "x", "-rate", "-1", "-burst", "5"}, "-rate must be a number, 0 or more"},
		{[]string{"keys", "create", "-db", db, "-name", "x", "-rate", "5", "-burst", "0"}, "-burst must be at least 1"},
		{[]string{"keys", "create", "-db", db, "-name", "x", "-rate", "0", "-burst", "5"}, "-rate 0 is no limit, and takes no -burst"},
		{[]string{"keys", "revoke", "-db", db}, "keys revoke takes one key id (see tutorials keys list)"},
		{[]string{"keys", "revoke", "-db", db, "abc"}, `keys revoke: "abc" is not a key id`},
		{[]string{"keys", "revoke", "1", "2", "-db", db}, "keys revoke takes one key id (see tutorials keys list)"},
		{[]string{"keys", "set-limit", "-db", db, "-rate", "1", "-burst", "1"}, "keys set-limit takes one key id (see tutorials keys list)"},
		{[]string{"keys", "set-limit", "1", "-db", db}, "keys set-limit needs -rate R -burst B, -rate 0 (no limit) or -default"},
		{[]string{"keys", "set-limit", "1", "-db", db, "-default", "-rate", "0"}, "keys set-limit: -default takes no -rate or -burst"},
		{[]string{"keys", "set-limit", "1", "-db", db, "-rate", "2"}, "-rate needs -burst, the requests a key may make at once"},
		{[]string{"keys", "list", "-db", db, "extra"}, `keys list takes no arguments, got "extra"`},
		{[]string{"serve", "-log-format", "xml"}, `-log-format must be text or json, not "xml"`},
		{[]string{"-rate", "-1"}, "-rate must be a number, 0 or more"},
		{[]string{"-rate", "NaN"}, "-rate must be a number, 0 or more"},
		{[]string{"-burst", "0"}, "-burst must be at least 1"},
		{[]string{"-rate", "fast"}, `serve: invalid value "fast" for flag -rate: parse error`},
		{[]string{"serve", "now"}, `serve takes no arguments, got "now"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := runCommand(t, tt.args...)
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("err = %v, want a usage error (exit 2)", err)
			}
			if err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", err.Error(), tt.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message is more than one line: %q", err.Error())
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, _, err := runCommand(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "tutorials ") || !strings.Contains(stdout, "go1.") {
		t.Errorf("version printed %q", stdout)
	}
}

func TestServeConfig(t *testing.T) {
	defaults := config{addr: ":8080", db: "tutorials.db", rate: 10, burst: 20, logFormat: "text"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want config
	}{
		{"defaults", nil, nil, defaults},
		{"PORT", nil, map[string]string{"PORT": "3000"},
			config{addr: ":3000", db: "tutorials.db", rate: 10, burst: 20, logFormat: "text"}},
		{"TUTORIALS_ADDR beats PORT", nil, map[string]string{"PORT": "3000", "TUTORIALS_ADDR": "127.0.0.1:9000"},
			config{addr: "127.0.0.1:9000", db: "tutorials.db", rate: 10, burst: 20, logFormat: "text"}},
		{"environment", nil, map[string]string{"TUTORIALS_DB": "/var/lib/t.db", "TUTORIALS_RATE": "2.5",
			"TUTORIALS_BURST": "5", "TUTORIALS_LOG_FORMAT": "json"},
			config{addr: ":8080", db: "/var/lib/t.db", rate: 2.5, burst: 5, logFormat: "json"}},
		{"DATABASE_URL, as hosting platforms set it", nil, map[string]string{"DATABASE_URL": "postgres://h/db"},
			config{addr: ":8080", db: "postgres://h/db", rate: 10, burst: 20, logFormat: "text"}},
		{"TUTORIALS_DB beats DATABASE_URL", nil, map[string]string{"DATABASE_URL": "postgres://h/db", "TUTORIALS_DB": "t.db"},
			config{addr: ":8080", db: "t.db", rate: 10, burst: 20, logFormat: "text"}},
		{"flags beat the environment", []string{"-addr", ":1", "-db", "f.db", "-rate", "0", "-burst", "1", "-log-format", "text"},
			map[string]string{"PORT": "3000", "TUTORIALS_ADDR": ":2", "TUTORIALS_DB": "e.db", "TUTORIALS_RATE": "3",
				"TUTORIALS_BURST": "4", "TUTORIALS_LOG_FORMAT": "json"},
			config{addr: ":1", db: "f.db", rate: 0, burst: 1, logFormat: "text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServeConfig(tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a bad variable is a usage error naming it", func(t *testing.T) {
		for name, value := range map[string]string{"TUTORIALS_RATE": "fast", "TUTORIALS_BURST": "lots"} {
			_, err := parseServeConfig(nil, env(map[string]string{name: value}))
			var usage *usageError
			if !errors.As(err, &usage) || !strings.HasPrefix(err.Error(), name+": ") {
				t.Errorf("%s=%s: err = %v, want a usage error naming %s", name, value, err, name)
			}
		}
	})
}

// A warning or an error is written out the moment it is logged, after the
// request lines gathered before it; request lines wait for a flush. So in
// both formats, through a logger With attributes, and through net/http's
// ErrorLog, as runServe builds them.
func TestWarningsAndErrorsAreWrittenAtOnce(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			logger := newLogger(logbuf.New(&out), format)
			written := func() []string {
				var msgs []string
				for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
					var rec struct{ Msg string }
					if format == "json" {
						json.Unmarshal([]byte(line), &rec)
					} else if m := regexp.MustCompile(`msg=(\S+)`).FindStringSubmatch(line); m != nil {
						rec.Msg = m[1]
					}
					if rec.Msg != "" {
						msgs = append(msgs, rec.Msg)
					}
				}
				return msgs
			}
			for _, step := range []struct {
				log  func()
				want []string
			}{
				{func() { logger.Info("request-1") }, nil},
				{func() { logger.Warn("warning") }, []string{"request-1", "warning"}},
				{func() { logger.Info("request-2") }, []string{"request-1", "warning"}},
				{func() { logger.With("key_id", 1).Error("error") }, []string{"request-1", "warning", "request-2", "error"}},
				{func() { newHTTPServer(nil, logger).ErrorLog.Print("from-net/http") },
					[]string{"request-1", "warning", "request-2", "error", "from-net/http"}},
			} {
				step.log()
				if diff := cmp.Diff(step.want, written()); diff != "" {
					t.Fatalf("the lines written (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// The error line of a request that failed inside the server is in the log
// before the client has its answer: killed right after it, the server has
// lost none of it, nor the request line before it.
func TestErrorLineSurvivesKill9(t *testing.T) {
	bin := buildBinary(t) // once: both engines run the same program
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		key := createKey(t, bin, db)
		p := startServer(t, bin, db)
		client := &http.Client{Timeout: 10 * time.Second}
		if status, err := p.post(client, key, "first"); err != nil || status != http.StatusCreated {
			t.Fatalf("create: %d, %v", status, err)
		}
		// From now on every insert fails, as on a database that breaks.
		if _, err := openSQL(t, db).Exec(refuseInserts(e)); err != nil {
			t.Fatal(err)
		}
		if status, err := p.post(client, key, "second"); err != nil || status != http.StatusInternalServerError {
			t.Fatalf("create with inserts refused: %d, %v, want 500", status, err)
		}
		p.cmd.Process.Kill()
		<-p.done

		var got []string
		for _, m := range regexp.MustCompile(`(?m)^.*level=(\w+) msg=request method=POST .*status=(\d+)`).FindAllStringSubmatch(p.logs.String(), -1) {
			got = append(got, m[1]+" "+m[2])
		}
		if diff := cmp.Diff([]string{"INFO 201", "ERROR 500"}, got); diff != "" {
			t.Errorf("request lines in the log of the killed server (-want +got):\n%s\n%s", diff, p.logs)
		}
	})
}

// serving is a serve command running in the background, as main runs it.
type serving struct {
	url    string
	stderr *syncBuffer
	stop   context.CancelFunc
	done   chan error
}

// listeningLine is the log line in which the server says where it listens.
var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServe runs "tutorials serve" on db, with flags, at a port the system
// chooses, and waits until it listens.
func startServe(t *testing.T, db string, flags ...string) *serving {
	t.Helper()
	return startServeWith(t, nil, append([]string{"-addr", "127.0.0.1:0", "-db", db}, flags...)...)
}

// startServeWith runs the program with args and no environment but vars,
// and waits until it listens.
func startServeWith(t *testing.T, vars map[string]string, args ...string) *serving {
	t.Helper()
	s, log := newServing()
	return s.start(t, vars, log, log, args...)
}

// newServing returns a serving not started yet, and the log that watches
// its stderr for the address it listens on.
func newServing() (*serving, *watchedLog) {
	s := &serving{stderr: &syncBuffer{}, done: make(chan error, 1)}
	return s, &watchedLog{syncBuffer: s.stderr, addr: make(chan string, 1)}
}

// start runs the program with args, no environment but vars, and its
// stderr on stderr, and waits until log, which sees what it writes, shows
// where it listens.
func (s *serving) start(t *testing.T, vars map[string]string, stderr io.Writer, log *watchedLog, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() {
		s.done <- run(ctx, args, env(vars), &bytes.Buffer{}, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	select {
	case addr := <-log.addr:
		s.url = "http://" + addr
		return s
	case err := <-s.done:
		s.done <- err // for the cleanup
		t.Fatalf("serve stopped: %v\n%s", err, s.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("serve did not start listening:\n%s", s.stderr)
	}
	return nil
}

// watchedLog is the log of a server starting: it sends on addr, once,
// where the server says it listens.
type watchedLog struct {
	*syncBuffer
	addr chan string
	sent atomic.Bool
}

func (l *watchedLog) Write(p []byte) (int, error) {
	n, err := l.syncBuffer.Write(p)
	// The whole log so far, not p: a line may come in two writes.
	if !l.sent.Load() {
		if m := listeningLine.FindStringSubmatch(l.String()); m != nil && l.sent.CompareAndSwap(false, true) {
			l.addr <- m[1]
		}
	}
	return n, err
}

// shutdown stops the server as SIGTERM would and returns run's error.
func (s *serving) shutdown(t *testing.T) error {
	t.Helper()
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
		return nil
	}
}

// Where stderr is not a terminal (a service manager's journal, a log
// collector), no key is made or shown: one line says how to make one.
func TestServeMakesNoKeyWhereStderrIsALog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		s := startServe(t, db)
		if keyInLog.MatchString(s.stderr.String()) {
			t.Errorf("a key reached the log:\n%s", s.stderr)
		}
		// slog quotes a value with an = in it, as a PostgreSQL URL's query has.
		shown := db
		if strings.ContainsAny(db, " =\"") {
			shown = strconv.Quote(db)
		}
		want := "level=WARN msg=\"no active API key: every request will be refused until you create one with: tutorials keys create -name NAME -db DB\" db=" + shown
		if !strings.Contains(s.stderr.String(), want) {
			t.Errorf("the log does not say how to make a key, %q:\n%s", want, s.stderr)
		}
		out, _, err := runCommand(t, "keys", "list", "-db", db)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
			t.Errorf("a key was made:\n%s", out)
		}
	})
}

// every runs its job until stopped, and stop waits for a job under way:
// what runServe does after it (the last save, closing the database) never
// runs beside the job.
func TestEveryStopWaitsForTheJobUnderWay(t *testing.T) {
	var calls atomic.Int64
	second, release := make(chan struct{}), make(chan struct{})
	stop := every(time.Millisecond, func() {
		if calls.Add(1) == 2 {
			close(second)
			<-release
		}
	})
	select {
	case <-second: // the job runs again and again; the second time it waits
	case <-time.After(10 * time.Second):
		t.Fatalf("the job ran %d times in 10 s, want at least twice", calls.Load())
	}
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	// That stop does not return is seen only by waiting a little: no
	// channel can say that something has not happened.
	select {
	case <-stopped:
		t.Fatal("stop returned while the job was under way")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-stopped
	n := calls.Load()
	stop() // and again: nothing happens
	if calls.Load() != n {
		t.Errorf("the job ran after stop returned")
	}
}

func TestServeLogsOneLinePerRequest(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := newTestDB(t, e)
		s := startServe(t, db)
		for i := range 3 {
			res, err := http.Get(fmt.Sprintf("%s/healthz?n=%d", s.url, i))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		requestLines := func() []string {
			return regexp.MustCompile(`(?m)^.*msg=request .*$`).FindAllString(s.stderr.String(), -1)
		}
		// The lines are buffered, but reach the log while the server runs.
		for deadline := time.Now().Add(2 * time.Second); len(requestLines()) < 3 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := len(requestLines()); n != 3 {
			t.Errorf("%d request lines in the log of the running server, want 3", n)
		}
		if err := s.shutdown(t); err != nil {
			t.Fatal(err)
		}
		lines := requestLines()
		if len(lines) != 3 {
			t.Fatalf("%d request lines, want 3:\n%s", len(lines), s.stderr)
		}
		for _, want := range []string{"method=GET", "path=/healthz", "status=200", "bytes=", "duration=", "key_id=0", "request_id="} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("request line lacks %s: %s", want, lines[0])
			}
		}
	})
}

func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"serve", "-help"}, {"keys", "create", "-h"}} {
		stdout, _, err := runCommand(t, args...)
		if err != nil {
			t.Fatalf("%v: %v, want the usage and exit 0", args, err)
		}
		for _, cmd := range []string{"tutorials [serve]", "keys create", "keys list", "keys revoke", "backup", "version"} {
			if !strings.Contains(stdout, cmd) {
				t.Errorf("%v does not name %q:\n%s", args, cmd, stdout)
			}
		}
	}
}
