// Command bench measures the tutorials server under load, next to a bare
// net/http handler on the same machine in the same run, and prints its
// tables: throughput at 10,000 tutorials, then the cases of scale (issue
// 16: each list and search at 10,000 and at 1,000,000 tutorials, lookups
// while eight clients send expensive ones, creates at 1,000,000; see
// scale.go). With -engine postgres, the same on PostgreSQL (issue 13; see
// postgres.go): a throwaway cluster of its own, or the server -postgres
// names.
//
//	go run ./bench                          # everything: about 10 minutes, plus seeding 1M rows (6)
//	go run ./bench -big-db /tmp/big.db      # the same, keeping the 1M-row database there for next time
//	go run ./bench -seed-only /tmp/big.db -rows 1000000   # only seed it
//	go run ./bench -only scale -big-db /tmp/big.db         # only the cases of scale
//	go run ./bench -skip-1m                 # only the 10,000-row throughput cases, about 90 s
//	go run ./bench -engine postgres         # the same cases on a throwaway PostgreSQL
//	go run ./bench -engine sqlite,postgres  # both, beside one baseline
//
// It builds the server, seeds a fresh database directly through SQL (10,000
// HTTP calls would measure the seeding, not the server), starts the server as
// its own process, and drives it over loopback with wrk. See BENCHMARKS.md
// for why wrk, and for the results. It is not part of CI: it takes minutes,
// and its numbers only mean something on a quiet machine.
package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
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
	bigDB            string // the large database to reuse, made by an earlier -seed-only; "" for a fresh one
	only             string // comma-separated cases to run, "" for all
	engines          []string
	postgres         string // the URL of a PostgreSQL server to use; "" for a throwaway one
	pgBigDB          string // the large PostgreSQL database to reuse; "" for a fresh one
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
	flag.StringVar(&o.bigDB, "big-db", "", "the large database, reused if it exists (make it with -seed-only FILE -rows 1000000), else seeded there; each run's creates add to it")
	flag.StringVar(&o.only, "only", "", "run only these cases of the server, comma-separated: detail,list,create,patch (the baseline always runs), or scale for only the cases of scale")
	engines := flag.String("engine", "sqlite", "the engines to measure, comma-separated: sqlite, postgres")
	flag.StringVar(&o.postgres, "postgres", "", "a PostgreSQL server to make the bench's databases in (postgres://... of a database to connect to, by a user who may CREATE DATABASE); else the bench starts a throwaway one")
	flag.StringVar(&o.pgBigDB, "pg-big-db", "", "with -postgres: the name of the large database there, reused if it exists, else seeded")
	flag.Parse()
	o.engines = strings.Split(*engines, ",")
	for _, e := range o.engines {
		if e != "sqlite" && e != "postgres" {
			fmt.Fprintf(os.Stderr, "bench: unknown engine %q\n", e)
			os.Exit(2)
		}
	}
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
	var base baseline
	defer base.stop()
	for _, engine := range o.engines {
		var err error
		switch engine {
		case "sqlite":
			err = runSQLite(o, bin, dir, script, &base)
		case "postgres":
			err = runPostgres(o, bin, dir, script, &base)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// baseline is the bare net/http server, started once, with the body of
// the first engine's detail answer.
type baseline struct{ srv *server }

// start starts the baseline unless it runs already.
func (b *baseline) start(dir string, body []byte) (*server, error) {
	if b.srv != nil {
		return b.srv, nil
	}
	var err error
	b.srv, err = startBaseline(dir, body)
	return b.srv, err
}

func (b *baseline) stop() {
	if b.srv != nil {
		b.srv.stop()
	}
}

// runSQLite runs every case on SQLite.
func runSQLite(o options, bin, dir, script string, b *baseline) error {
	fmt.Println("\n== SQLite")
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
	base, err := runThroughput(o, dir, script, srv, key, b)
	if err != nil || o.skipBig || o.only != "" && o.only != "scale" {
		return err
	}
	return runScale(o, bin, dir, base)
}

// runThroughput runs the throughput cases on a server of o.rows tutorials,
// between two runs of the baseline, and prints their table. It starts the
// baseline, if need be, with the body of the server's tutorial-1.
func runThroughput(o options, dir, script string, srv *server, key string, b *baseline) (*server, error) {
	if _, err := srv.waitReady(key, 10*time.Second); err != nil {
		return nil, err
	}
	idleStart := srv.rss()

	// The baseline answers with the very bytes of a detail response.
	body, err := srv.get("/api/v1/tutorials/tutorial-1", key)
	if err != nil {
		return nil, err
	}
	base, err := b.start(dir, body)
	if err != nil {
		return nil, err
	}

	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
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
		r, err := measure(o, script, c.name, c.kase, c.srv, key, o.rows, tag)
		if err != nil {
			return nil, err
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

	fmt.Printf("\n%d connections, %d wrk threads, %v per case after %v of warm-up; %d tutorials of 40 to 80 words\n\n",
		o.conns, o.threads, o.duration, o.warmup, o.rows)
	printTable(results, baseline)
	fmt.Printf("\nserver RSS: idle after start %s, idle 5 s after the load %s, peak under load %s\n",
		mib(idleStart), mib(idleAfter), mib(maxPeak(results)))
	return base, nil
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
	return summarize(name, w), err
}

// summarize is the result of one run of wrk.
func summarize(name string, w wrkSummary) result {
	r := result{
		name:   name,
		p50:    time.Duration(w.P50US) * time.Microsecond,
		p99:    time.Duration(w.P99US) * time.Microsecond,
		errors: w.Connect + w.Read + w.Write + w.Status + w.Timeout,
	}
	if w.DurationUS > 0 {
		r.rps = float64(w.Requests) / (float64(w.DurationUS) / 1e6)
	}
	return r
}

// runWrk runs wrk once with wrk.lua.
func runWrk(o options, script string, d time.Duration, kase, url, key string, rows int, tag string) (wrkSummary, error) {
	return wrk(o, script, d, url, kase, key, strconv.Itoa(rows), tag)
}

// wrk runs wrk once with script and its arguments, and reads the summary
// line the script's done() prints.
func wrk(o options, script string, d time.Duration, url string, args ...string) (wrkSummary, error) {
	cmd := exec.Command("wrk", append([]string{"-t", strconv.Itoa(o.threads), "-c", strconv.Itoa(o.conns),
		"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "5s", "-s", script, url, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	kase := args[0]
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
