package main

// The cases of scale (issue 16): each list and search request of the
// issue's table with one client, on 10,000 tutorials and on 1,000,000, and
// the ratio between the two; the starvation case, lookups while eight
// clients send the most expensive requests there are; POST create at
// 1,000,000 rows; and how soon a server started on 1,000,000 rows answers.

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed scale.lua
var scaleScript []byte

// scaleCase is one request of the table, as scale.lua runs it,
// given the number of tutorials of the database it runs on.
type scaleCase struct {
	name  string
	kase  string // scale.lua's case
	param func(db scaleDB) string
}

// scaleDB is a database the cases run on, and what they need to know of it.
type scaleDB struct {
	srv    *server
	key    string
	path   string
	rows   int    // tutorials in it when the cases start
	seeded int    // of them, the seed's: tutorial-1 to tutorial-seeded (the rest are earlier runs' creates)
	deep   string // the path of the page at 80% of the list's depth, by cursor
}

// windowPages are the pages of a search's window: 1,000 matches, 20 a page.
const windowPages = "1,50,"

// depth is page n of rows/perPage, at fraction f of the way.
func depth(rows, perPage int, f float64) int { return max(1, int(f*float64(rows/perPage))) }

// scaleCases are the rows of the table, in its order.
var scaleCases = []scaleCase{
	{"q=a (one letter, a prefix)", "pages", func(scaleDB) string { return windowPages + "q={junk}a&page={page}" }},
	{"q=t, d, e, tutorial, in turn", "mixed", func(scaleDB) string {
		return windowPages + "q={junk}t&page={page}|q={junk}d&page={page}|q={junk}e&page={page}|q={junk}tutorial&page={page}"
	}},
	{"q=kubernetes (a word in 95% of rows)", "pages", func(scaleDB) string { return windowPages + "q={junk}kubernetes&page={page}" }},
	{"q=kubernetes&sort=-published_at", "pages", func(scaleDB) string {
		return windowPages + "q={junk}kubernetes&sort=-published_at&page={page}"
	}},
	{"q=kubernetes&sort=title", "pages", func(scaleDB) string { return windowPages + "q={junk}kubernetes&sort=title&page={page}" }},
	{"q=kubernetes&category=devops", "pages", func(scaleDB) string {
		return windowPages + "q={junk}kubernetes&category=devops&page={page}"
	}},
	{"two filters, pages at 50-90% of their depth, by number", "pages", func(db scaleDB) string {
		n := db.rows / 18 // each of 6 categories and 3 difficulties
		return fmt.Sprintf("%d,%d,difficulty=advanced&category=devops&page={page}", depth(n, 20, 0.5), depth(n, 20, 0.9))
	}},
	{"pages at 60-100% of the list's depth, by number (page=40000 of 50000)", "pages", func(db scaleDB) string {
		return fmt.Sprintf("%d,%d,page={page}", depth(db.rows, 20, 0.6), depth(db.rows, 20, 1))
	}},
	{"following next from page 1", "follow", func(scaleDB) string { return "/api/v1/tutorials" }},
	{"following next from 80% of the list's depth (page 40000)", "follow", func(db scaleDB) string { return db.deep }},
	{"GET one tutorial by slug, rotating", "detail", func(db scaleDB) string { return strconv.Itoa(db.seeded) }},
	{"page 1 of one category", "pages", func(scaleDB) string { return "1,100,category=devops&per_page={page}" }},
}

// deepCursor is the path of page n+1 of the list in its default order, by
// the cursor of the last item of page n, whose publish time (as the API
// writes it) and id are given, as a client that followed next that far
// would have it (see internal/cursor for the format).
func deepCursor(published string, id int64, n int) string {
	b, _ := json.Marshal([]any{"-published_at", published, id})
	return fmt.Sprintf("/api/v1/tutorials?cursor=%s&page=%d", base64.RawURLEncoding.EncodeToString(b), n+1)
}

// sqliteDeepPosition is the publish time and id of the last item of page n
// of the list in its default order, 20 a page, in the SQLite database at
// path.
func sqliteDeepPosition(path string, n int) (string, int64, error) {
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	var published string
	var id int64
	err = conn.QueryRow(`SELECT published_at, id FROM tutorials ORDER BY published_at DESC, id DESC LIMIT 1 OFFSET ?`,
		n*20-1).Scan(&published, &id)
	return published, id, err
}

// expensiveLoad is what the starvation case's eight clients send: the most
// expensive requests the bench could find, 100 items a page, none twice.
const expensiveLoad = "1,10," +
	"q={junk}the+kubernetes+a+python+and&per_page=100&page={page}|" +
	"q={junk}a&sort=title&per_page=100&page={page}|" +
	"q={junk}kubernetes&category=devops&difficulty=advanced&per_page=100&page={page}|" +
	"q={junk}dep&sort=-published_at&per_page=100&page={page}|" +
	"q={junk}t&per_page=100&page={page}|" +
	"sort=title&per_page=100&page={page}000|" +
	"sort=published_at&category=security&per_page=100&page={page}50"

// runScale runs the cases of scale. small is a fresh database of o.rows
// tutorials beside the main one (whose rows the main cases' creates add
// to); the large one is made, or reused from o.bigDB.
func runScale(o options, bin, dir string, base *server) error {
	small, stopSmall, err := scaleDatabase(bin, dir, filepath.Join(dir, "scale-small.db"), o.rows, "")
	if err != nil {
		return err
	}
	defer stopSmall()
	bigPath := o.bigDB
	if bigPath == "" {
		bigPath = filepath.Join(dir, "big.db")
	}
	starts, err := startTimes(bin, dir, bigPath, o.bigRows)
	if err != nil {
		return err
	}
	big, stopBig, err := scaleDatabase(bin, dir, bigPath, o.bigRows, "big")
	if err != nil {
		return err
	}
	defer stopBig()

	if err := runScaleCases(o, dir, base, small, big); err != nil {
		return err
	}
	fmt.Printf("start to first answered request at %d tutorials: median %s (of %v)\n", big.rows, ms(starts[len(starts)/2]), starts)
	return nil
}

// runScaleCases runs the cases of scale.lua on small and big, beside the
// baseline with one client, then the starvation case and POST create on
// big, and prints their tables.
func runScaleCases(o options, dir string, base *server, small, big scaleDB) error {
	script := filepath.Join(dir, "scale.lua")
	if err := os.WriteFile(script, scaleScript, 0o644); err != nil {
		return err
	}
	one := o
	one.conns, one.threads = 1, 1
	run := func(name, kase, param string, s *server, key string) (result, error) {
		fmt.Printf("running: %s\n", name)
		return measureScript(one, script, name, kase, param, s, key)
	}
	baseBefore, err := run("baseline, one client", "path", "/", base, "")
	if err != nil {
		return err
	}
	type row struct{ small, big result }
	var rows []row
	for _, c := range scaleCases {
		s, err := run(c.name+fmt.Sprintf(" (%d)", small.rows), c.kase, c.param(small), small.srv, small.key)
		if err != nil {
			return err
		}
		b, err := run(c.name+fmt.Sprintf(" (%d)", big.rows), c.kase, c.param(big), big.srv, big.key)
		if err != nil {
			return err
		}
		rows = append(rows, row{s, b})
	}
	baseAfter, err := run("baseline, one client, again", "path", "/", base, "")
	if err != nil {
		return err
	}
	starve, err := starvation(o, script, big)
	if err != nil {
		return err
	}
	create, err := measure(o, filepath.Join(dir, "wrk.lua"), "POST create at the large size", "create", big.srv, big.key, big.rows, strconv.FormatInt(time.Now().Unix(), 36)+"big")
	if err != nil {
		return err
	}

	baseP50 := (baseBefore.p50 + baseAfter.p50) / 2
	fmt.Printf("\none client (wrk -c1 -t1), %v per case after %v of warm-up; %d and %d tutorials\n\n",
		o.duration, o.warmup, small.rows, big.rows)
	fmt.Println("| request | p50, p99 at " + strconv.Itoa(small.rows) + " | p50, p99 at " + strconv.Itoa(big.rows) +
		" | ratio p50, p99 | p50 × baseline's | errors |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	fmt.Printf("| baseline: bare net/http, one client | %s, %s | | | 1 | %d |\n", ms(baseBefore.p50), ms(baseBefore.p99), baseBefore.errors)
	for i, c := range scaleCases {
		r := rows[i]
		fmt.Printf("| %s | %s, %s | %s, %s | %.2f, %.2f | %.0f | %d |\n", c.name,
			ms(r.small.p50), ms(r.small.p99), ms(r.big.p50), ms(r.big.p99),
			float64(r.big.p50)/float64(r.small.p50), float64(r.big.p99)/float64(r.small.p99),
			float64(r.big.p50)/float64(baseP50), r.small.errors+r.big.errors)
	}
	fmt.Printf("| baseline again | %s, %s | | | | %d |\n", ms(baseAfter.p50), ms(baseAfter.p99), baseAfter.errors)
	fmt.Printf("\nstarvation, at %d tutorials: while 8 clients send the most expensive requests (%.0f/s, %d errors, of them %d answered 503):\n",
		big.rows, starve.load.rps, starve.load.errors, starve.timeouts)
	for _, r := range []result{starve.detail, starve.list} {
		fmt.Printf("- %s: p50 %s, p99 %s, %d errors\n", r.name, ms(r.p50), ms(r.p99), r.errors)
	}
	fmt.Printf("- /healthz every 100 ms: %d answers, %d not 200, slowest %s\n", starve.health, starve.healthBad, ms(starve.healthMax))
	fmt.Printf("\nPOST create at %d tutorials, %d connections: %.0f/s, p50 %s, p99 %s, %d errors\n",
		big.rows, o.conns, create.rps, ms(create.p50), ms(create.p99), create.errors)
	return nil
}

// countSQL counts a database's tutorials, and those of them the seed made,
// in SQL both engines speak.
const countSQL = `SELECT count(*), count(CASE WHEN slug LIKE 'tutorial-%' THEN 1 END) FROM tutorials`

// scaleDatabase makes (or, when path exists, reuses) a database of rows
// tutorials and starts a server on it.
func scaleDatabase(bin, dir, path string, rows int, name string) (scaleDB, func(), error) {
	db := scaleDB{path: path}
	var err error
	if _, statErr := os.Stat(path); statErr == nil {
		db.key, err = newKey(bin, path)
		fmt.Printf("\nreusing %s\n", path)
	} else {
		var took time.Duration
		db.key, took, err = newDatabase(bin, path, rows)
		fmt.Printf("\nseeded %d tutorials in %v\n", rows, took.Round(time.Millisecond))
	}
	if err != nil {
		return db, nil, err
	}
	if name == "" {
		name = "scale-small"
	}
	db.srv, err = startServer(bin, path, dir, name)
	if err != nil {
		return db, nil, err
	}
	if _, err := db.srv.waitReady(db.key, 60*time.Second); err != nil {
		db.srv.stop()
		return db, nil, err
	}
	conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err == nil {
		err = conn.QueryRow(countSQL).Scan(&db.rows, &db.seeded)
		conn.Close()
	}
	if err == nil {
		n := depth(db.rows, 20, 0.8)
		published, id, err := sqliteDeepPosition(path, n)
		db.deep = deepCursor(published, id, n)
		return db, db.srv.stop, err
	}
	return db, db.srv.stop, err
}

// startTimes starts a server on the large database five times and returns
// how long each took from exec to a real request, with a key, answered
// 200, in order. It seeds the database first if need be.
func startTimes(bin, dir, path string, rows int) ([]time.Duration, error) {
	db, stop, err := scaleDatabase(bin, dir, path, rows, "big-first")
	if err != nil {
		return nil, err
	}
	stop()
	var starts []time.Duration
	for i := range 5 {
		srv, err := startServer(bin, path, dir, fmt.Sprintf("big-start-%d", i))
		if err != nil {
			return nil, err
		}
		d, err := srv.waitReady(db.key, 30*time.Second)
		srv.stop()
		if err != nil {
			return nil, err
		}
		starts = append(starts, d)
	}
	slices.Sort(starts)
	return starts, nil
}

// starvationResult is what the starvation case measured.
type starvationResult struct {
	load, detail, list result
	timeouts           int // answers of the load that were 503
	health, healthBad  int
	healthMax          time.Duration
}

// starvation runs eight clients of expensiveLoad for the whole case and,
// beside them, one client of GET detail, then one of page 1 of the list,
// while it asks /healthz every 100 ms.
func starvation(o options, script string, db scaleDB) (starvationResult, error) {
	var res starvationResult
	fmt.Println("running: starvation")
	heavy := o
	heavy.conns, heavy.threads = 8, 2
	total := o.warmup + 2*o.duration + 2*time.Second
	var wg sync.WaitGroup
	var loadErr error
	wg.Go(func() {
		var w wrkSummary
		w, loadErr = runWrkScript(heavy, script, total, "mixed", expensiveLoad, db.srv.url, db.key)
		res.load = summarize("expensive load", w)
	})
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		for tick := time.NewTicker(100 * time.Millisecond); ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			resp, err := client.Get(db.srv.url + "/healthz")
			res.health++
			res.healthMax = max(res.healthMax, time.Since(start))
			if err != nil || resp.StatusCode != http.StatusOK {
				res.healthBad++
			}
			if err == nil {
				resp.Body.Close()
			}
		}
	})
	time.Sleep(o.warmup)
	one := o
	one.conns, one.threads, one.warmup = 1, 1, 0
	var err error
	if res.detail, err = measureScript(one, script, "GET one tutorial by slug, rotating", "detail", strconv.Itoa(db.seeded), db.srv, db.key); err == nil {
		res.list, err = measureScript(one, script, "GET page 1 of the list", "path", "/api/v1/tutorials", db.srv, db.key)
	}
	cancel()
	wg.Wait()
	if err == nil {
		err = loadErr
	}
	res.timeouts = countStatus(db.srv, "503")
	return res, err
}

// countStatus counts the lines of the server's log that answered status.
func countStatus(s *server, status string) int {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return -1
	}
	return strings.Count(string(b), "status="+status+" ")
}

// measureScript runs one case of scale.lua: a warm-up whose numbers are
// thrown away, then the measured run.
func measureScript(o options, script, name, kase, param string, s *server, key string) (result, error) {
	if o.warmup > 0 {
		if _, err := runWrkScript(o, script, o.warmup, kase, param, s.url, key); err != nil {
			return result{}, err
		}
	}
	w, err := runWrkScript(o, script, o.duration, kase, param, s.url, key)
	return summarize(name, w), err
}

// runWrkScript runs wrk once with scale.lua.
func runWrkScript(o options, script string, d time.Duration, kase, param, url, key string) (wrkSummary, error) {
	return wrk(o, script, d, url, kase, key, param)
}
