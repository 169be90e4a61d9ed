// Command bench measures the tutorials server under load, next to a bare
// net/http handler on the same machine in the same run, and prints one table.
//
//	go run ./bench              # everything, about 3 minutes plus seeding 1M rows
//	go run ./bench -skip-1m     # only the 10,000-row cases, about 90 s
//
// It builds the server, seeds a fresh database directly through SQL (10,000
// HTTP calls would measure the seeding, not the server), starts the server as
// its own process, and drives it over loopback with wrk. See BENCHMARKS.md
// for why wrk, and for the results. It is not part of CI: it takes minutes,
// and its numbers only mean something on a quiet machine.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite"
)

//go:embed wrk.lua
var wrkScript []byte

// options are the bench's flags.
type options struct {
	duration, warmup time.Duration
	conns, threads   int
	rows, bigRows    int
	skipBig          bool
	keep             bool
	seedOnly         string // seed this file with -rows tutorials, print a key for it, and stop
	only             string // comma-separated cases to run, "" for all
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "baseline" {
		serveBaseline(os.Args[2], os.Args[3])
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long each case runs")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before each case that is not measured")
	flag.IntVar(&o.conns, "conns", 64, "concurrent connections")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.IntVar(&o.rows, "rows", 10_000, "tutorials in the main database")
	flag.IntVar(&o.bigRows, "big-rows", 1_000_000, "tutorials in the large database")
	flag.BoolVar(&o.skipBig, "skip-1m", false, "skip the cases on the large database (seeding it takes a while)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (databases, server logs)")
	flag.StringVar(&o.seedOnly, "seed-only", "", "only create and seed this database file with -rows tutorials, print a key for it, and exit")
	flag.StringVar(&o.only, "only", "", "run only these cases of the server, comma-separated: detail,list,create,patch (the baseline always runs)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one case's numbers.
type result struct {
	name     string
	rps      float64
	p50, p99 time.Duration
	errors   int
	peakRSS  int64 // bytes, 0 when not measured
}

// wrkSummary is the line wrk.lua's done() prints.
type wrkSummary struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	P50US      int64 `json:"p50_us"`
	P99US      int64 `json:"p99_us"`
	MaxUS      int64 `json:"max_us"`
	Connect    int   `json:"connect"`
	Read       int   `json:"read"`
	Write      int   `json:"write"`
	Status     int   `json:"status"`
	Timeout    int   `json:"timeout"`
}

func run(o options) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install wrk")
	}
	dir, err := os.MkdirTemp("", "tutorials-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	script := filepath.Join(dir, "wrk.lua")
	if err := os.WriteFile(script, wrkScript, 0o644); err != nil {
		return err
	}

	// Build the binary a user deploys, as the README's release build does:
	// static, without cgo. With cgo (the default where a C compiler is
	// found) the server also maps the C library, which is memory the
	// deployed binary never has.
	bin := filepath.Join(dir, "tutorials")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the server (run the bench from the repository root): %w", err)
	}

	if o.seedOnly != "" {
		key, took, err := newDatabase(bin, o.seedOnly, o.rows)
		if err != nil {
			return err
		}
		fmt.Printf("seeded %d tutorials in %v into %s; a key for it:\n%s\n", o.rows, took.Round(time.Millisecond), o.seedOnly, key)
		return nil
	}

	printMachine(o)

	db := filepath.Join(dir, "bench.db")
	key, took, err := newDatabase(bin, db, o.rows)
	if err != nil {
		return err
	}
	fmt.Printf("seeded %d tutorials in %v\n", o.rows, took.Round(time.Millisecond))

	srv, err := startServer(bin, db, dir, "server")
	if err != nil {
		return err
	}
	defer srv.stop()
	if _, err := srv.waitReady(key, 10*time.Second); err != nil {
		return err
	}
	idleStart := srv.rss()

	// The baseline answers with the very bytes of a detail response.
	body, err := srv.get("/api/v1/tutorials/tutorial-1", key)
	if err != nil {
		return err
	}
	base, err := startBaseline(dir, body)
	if err != nil {
		return err
	}
	defer base.stop()

	tag := strconv.FormatInt(time.Now().Unix(), 36)
	load := func(name, kase string, s *server, rows int) (result, error) {
		return measure(o, script, name, kase, s, key, rows, tag)
	}
	var results []result
	for _, c := range []struct {
		name, kase string
		srv        *server
	}{
		{"baseline: bare net/http, detail-sized body", "baseline", base},
		{"GET detail (rotating over all slugs)", "detail", srv},
		{"GET list page 1 (20 items, totals)", "list", srv},
		{"POST create (unique slugs)", "create", srv},
		{"PATCH one field", "patch", srv},
		{"baseline again, after the cases", "baseline", base},
	} {
		if o.only != "" && c.kase != "baseline" && !slices.Contains(strings.Split(o.only, ","), c.kase) {
			continue
		}
		r, err := load(c.name, c.kase, c.srv, o.rows)
		if err != nil {
			return err
		}
		if c.srv == srv {
			r.peakRSS = srv.peakRSS()
		}
		results = append(results, r)
	}
	baseline := (results[0].rps + results[len(results)-1].rps) / 2

	// Go returns freed memory to the system a little at a time.
	time.Sleep(5 * time.Second)
	idleAfter := srv.rss()

	fmt.Printf("\n%d connections, %d wrk threads, %v per case after %v of warm-up; %d tutorials of about 2 KB\n\n",
		o.conns, o.threads, o.duration, o.warmup, o.rows)
	printTable(results, baseline)
	fmt.Printf("\nserver RSS: idle after start %s, idle 5 s after the load %s, peak under load %s\n",
		mib(idleStart), mib(idleAfter), mib(maxPeak(results)))

	if o.skipBig || o.only != "" {
		return nil
	}
	return runBig(o, bin, dir, script, tag, srv, key)
}

// runBig measures what changes with a million rows: list page 1, and how
// soon a restarted server answers. The list at 1M runs between two runs of
// the list at 10k, on the server still up from the main cases, so that a
// change in the machine's load shows as a difference between those two.
func runBig(o options, bin, dir, script, tag string, smallSrv *server, smallKey string) error {
	db := filepath.Join(dir, "big.db")
	key, took, err := newDatabase(bin, db, o.bigRows)
	if err != nil {
		return err
	}
	fmt.Printf("\nseeded %d tutorials in %v\n", o.bigRows, took.Round(time.Millisecond))

	// Start to first answered request: a real request, with a key, that
	// answers 200. Several starts, the median of them.
	var starts []time.Duration
	for i := range 5 {
		srv, err := startServer(bin, db, dir, fmt.Sprintf("big-start-%d", i))
		if err != nil {
			return err
		}
		d, err := srv.waitReady(key, 30*time.Second)
		srv.stop()
		if err != nil {
			return err
		}
		starts = append(starts, d)
	}
	slices.Sort(starts)

	srv, err := startServer(bin, db, dir, "big")
	if err != nil {
		return err
	}
	defer srv.stop()
	if _, err := srv.waitReady(key, 30*time.Second); err != nil {
		return err
	}
	smallName := fmt.Sprintf("GET list page 1 at %d rows", o.rows)
	before, err := measure(o, script, smallName, "list", smallSrv, smallKey, o.rows, tag)
	if err != nil {
		return err
	}
	big, err := measure(o, script, fmt.Sprintf("GET list page 1 at %d rows", o.bigRows), "list", srv, key, o.bigRows, tag)
	if err != nil {
		return err
	}
	big.peakRSS = srv.peakRSS()
	after, err := measure(o, script, smallName+", again", "list", smallSrv, smallKey, o.rows, tag)
	if err != nil {
		return err
	}

	fmt.Printf("\n| case | req/s | p50 | p99 | errors | peak RSS |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range []result{before, big, after} {
		rss := "-" // the 10k server's peak is in the table above
		if r.peakRSS > 0 {
			rss = mib(r.peakRSS)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %d | %s |\n", r.name, r.rps, ms(r.p50), ms(r.p99), r.errors, rss)
	}
	smallRPS := (before.rps + after.rps) / 2
	smallP50 := (before.p50 + after.p50) / 2
	fmt.Printf("\nlist page 1 at %d rows: %.2f x the time per request at %d rows (by req/s), %.2f x by p50\n",
		o.bigRows, smallRPS/big.rps, o.rows, float64(big.p50)/float64(smallP50))
	fmt.Printf("start to first answered request at %d rows: median %s (of %v)\n", o.bigRows, ms(starts[len(starts)/2]), starts)
	return nil
}

// measure runs one case: a warm-up whose numbers are thrown away, then the
// measured run. The server's peak RSS is reset first, so that it is this
// case's peak.
func measure(o options, script, name, kase string, s *server, key string, rows int, tag string) (result, error) {
	fmt.Printf("running: %s\n", name)
	if _, err := runWrk(o, script, o.warmup, kase, s.url, key, rows, tag+"w"); err != nil {
		return result{}, err
	}
	s.resetPeak()
	w, err := runWrk(o, script, o.duration, kase, s.url, key, rows, tag)
	if err != nil {
		return result{}, err
	}
	return result{
		name:   name,
		rps:    float64(w.Requests) / (float64(w.DurationUS) / 1e6),
		p50:    time.Duration(w.P50US) * time.Microsecond,
		p99:    time.Duration(w.P99US) * time.Microsecond,
		errors: w.Connect + w.Read + w.Write + w.Status + w.Timeout,
	}, nil
}

// runWrk runs wrk once and reads the summary line of wrk.lua.
func runWrk(o options, script string, d time.Duration, kase, url, key string, rows int, tag string) (wrkSummary, error) {
	cmd := exec.Command("wrk", "-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "5s", "-s", script, url,
		"--", kase, key, strconv.Itoa(rows), tag)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkSummary{}, fmt.Errorf("wrk %s: %w\n%s", kase, err, out)
	}
	for line := range strings.Lines(string(out)) {
		if rest, ok := strings.CutPrefix(line, "BENCH "); ok {
			var s wrkSummary
			err := json.Unmarshal([]byte(rest), &s)
			return s, err
		}
	}
	return wrkSummary{}, fmt.Errorf("wrk %s printed no summary:\n%s", kase, out)
}

// ---- The database ----

// newDatabase creates a database the way a user would (the server's own
// "keys create", which also runs the migrations), then fills it with rows
// tutorials straight through SQL, in one transaction.
func newDatabase(bin, path string, rows int) (key string, took time.Duration, err error) {
	out, err := exec.Command(bin, "keys", "create", "-name", "bench", "-db", path).Output()
	if err != nil {
		return "", 0, fmt.Errorf("keys create: %w", err)
	}
	key = strings.TrimSpace(string(out))
	start := time.Now()
	err = seed(path, rows)
	return key, time.Since(start), err
}

// categories the seeded tutorials are spread over.
var categories = []string{"backend", "frontend", "databases", "devops", "security", "testing"}

var difficulties = []string{"beginner", "intermediate", "advanced"}

// vocabulary is what the seeded tutorials are written in: a small
// vocabulary, as a real library's is, drawn so that a few words are in
// almost every tutorial. commonWords go into each content with the
// probability beside them ("kubernetes" is the word in 95% of rows of
// issue 16); the other words are drawn with Zipf's law, the first most
// often, and many begin with a, t, d or e, so that a one-letter prefix
// matches most of the library.
var (
	commonWords = []struct {
		word string
		p    float64
	}{{"the", 0.99}, {"kubernetes", 0.95}, {"a", 0.9}, {"python", 0.6}, {"and", 0.8}}
	vocabulary = strings.Fields(`to of in data deploy test api app access
		table tutorial error event docker debug development design edge endpoint
		text thread token trace type admin agent async audit auth array
		database default delete driver dependency engine environment encoding
		server client cache write read commit query index page cursor key hash
		route row column trigger batch fsync handler json sqlite http go rust java
		typescript terraform testing templates tls timeout transaction elastic
		email export extension analytics ansible architecture authentication
		automation dashboard deployment diagram django distributed encryption
		flask graphql kafka lambda linux logging memory metrics migration
		monitoring network nginx oauth performance postgres react redis
		replication scaling schema security service storage stream sync
		unicode vector webhook worker yaml zero`)
)

// seedContent writes one tutorial's content into b: 40 to 80 words, each
// of commonWords by its probability, the rest from vocabulary.
func seedContent(b *strings.Builder, rng *rand.Rand, zipf *rand.Zipf) {
	b.Reset()
	n := 40 + rng.IntN(41)
	for _, c := range commonWords {
		if rng.Float64() < c.p {
			b.WriteString(c.word)
			b.WriteByte(' ')
			n--
		}
	}
	for range n {
		b.WriteString(vocabulary[zipf.Uint64()])
		b.WriteByte(' ')
	}
}

// seed inserts n tutorials named tutorial-1 to tutorial-n, with short
// contents in the vocabulary above and publish times spread over three
// years, some of them equal (so that the orders' ties on id are met). It
// writes the columns of migration 1; the triggers of later migrations, if
// any, keep whatever they maintain up to date.
func seed(path string, n int) error {
	// No journal and no fsync while seeding, and a large page cache: in WAL
	// mode one transaction of a million rows writes the WAL several times
	// over. The database goes back to WAL, as the server wants it, after.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(OFF)"+
		"&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tutorials
		(title, slug, excerpt, content, category, difficulty, estimated_time, published_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocabulary)-1))
	var content strings.Builder
	now := time.Now().UTC().Truncate(time.Second)
	for i := 1; i <= n; i++ {
		seedContent(&content, rng, zipf)
		// Whole minutes over three years: about one tutorial in three
		// shares its minute with another at a million rows.
		published := now.Add(-time.Duration(rng.Int64N(3*365*24*60)) * time.Minute).Format(time.RFC3339)
		created := now.Format(time.RFC3339)
		_, err := stmt.ExecContext(ctx,
			fmt.Sprintf("Tutorial %d: %s and %s", i, vocabulary[zipf.Uint64()], vocabulary[rng.IntN(len(vocabulary))]),
			fmt.Sprintf("tutorial-%d", i),
			"A tutorial the benchmark made.",
			content.String(),
			categories[i%len(categories)],
			difficulties[(i/len(categories))%len(difficulties)],
			5+i%115,
			published, created, created)
		if err != nil {
			return fmt.Errorf("seed row %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "PRAGMA journal_mode = WAL")
	return err
}

// ---- Processes ----

// server is a process the bench started and drives.
type server struct {
	cmd   *exec.Cmd
	url   string
	start time.Time
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs the tutorials server on db with rate limiting off (the
// bench is one key making thousands of requests a second). Its log, one
// line per request as in production, goes to a file.
func startServer(bin, db, dir, name string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	cmd := exec.Command(bin, "serve", "-addr", addr, "-db", db, "-rate", "0")
	cmd.Stdout, cmd.Stderr = log, log
	s := &server{cmd: cmd, url: "http://" + addr, start: time.Now()}
	return s, cmd.Start()
}

// startBaseline runs this same program as the baseline server.
func startBaseline(dir string, body []byte) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "baseline-body.json")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "baseline", addr, path)
	cmd.Stderr = os.Stderr
	s := &server{cmd: cmd, url: "http://" + addr, start: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	_, err = s.waitReady("", 10*time.Second)
	return s, err
}

// serveBaseline is the baseline: the most a Go HTTP server can do on this
// machine with a body of that size. No routing, no database, no JSON: the
// body is encoded once, before the first request.
func serveBaseline(addr, bodyPath string) {
	body, err := os.ReadFile(bodyPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	length := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", length)
		w.Write(body)
	})
	fmt.Fprintln(os.Stderr, "baseline:", http.ListenAndServe(addr, h))
	os.Exit(1)
}

// waitReady polls until a GET of page 1 of the list, with key, answers 200,
// and returns how long after the process started that was.
func (s *server) waitReady(key string, limit time.Duration) (time.Duration, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", s.url+"/api/v1/tutorials", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(s.start), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("%s did not answer within %v", s.url, limit)
}

// get returns the body of a GET that must answer 200.
func (s *server) get(path, key string) ([]byte, error) {
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, err
}

// stop ends the process the way systemd would, and waits for it.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
}

// procStatus reads one field, in kB, of /proc/PID/status.
func (s *server) procStatus(field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rss is the server's resident memory now; peakRSS its highest since the
// last resetPeak.
func (s *server) rss() int64     { return s.procStatus("VmRSS") }
func (s *server) peakRSS() int64 { return s.procStatus("VmHWM") }

// resetPeak starts the count of peakRSS again (Linux 4.0 and later).
func (s *server) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}

// ---- Output ----

func printMachine(o options) {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	wrkVersion, _ := exec.Command("wrk", "-v").CombinedOutput()
	fmt.Printf("machine: %s, %d CPUs, %s/%s, %s; load average %s",
		model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), load)
	if first, _, _ := bytes.Cut(wrkVersion, []byte("\n")); len(first) > 0 {
		fmt.Printf("load generator: %s\n", first)
	}
}

func printTable(results []result, baseline float64) {
	fmt.Println("| case | req/s | p50 | p99 | errors | x baseline | peak RSS |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		rss := "-"
		if r.peakRSS > 0 {
			rss = mib(r.peakRSS)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %d | %.2f | %s |\n",
			r.name, r.rps, ms(r.p50), ms(r.p99), r.errors, r.rps/baseline, rss)
	}
}

func maxPeak(results []result) int64 {
	var m int64
	for _, r := range results {
		m = max(m, r.peakRSS)
	}
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
