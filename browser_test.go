package main

// This test calls the API from a page in a real browser (Chromium) on
// another origin, as CORS must allow.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// chromiumPath is where Debian's chromium package puts the browser. CI
// installs it; elsewhere the browser tests skip.
const chromiumPath = "/usr/bin/chromium"

// browserPage is a page that creates a tutorial through the API on another
// origin, reads it back through the Location the create answered, and shows
// what happened in #result. It needs what a real front end needs: the
// preflight for a POST with Authorization, and Location in Expose-Headers.
const browserPage = `<!doctype html>
<meta charset="utf-8">
<title>CORS test</title>
<p id="result">pending</p>
<script>
const api = %s, key = %s, slug = %s;
const show = text => { document.getElementById("result").textContent = text; };
(async () => {
	try {
		const created = await fetch(api + "/api/v1/tutorials", {
			method: "POST",
			headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
			body: JSON.stringify({title: "From a browser", slug: slug, content: "fetch()"}),
		});
		const location = created.headers.get("Location");
		const got = await fetch(new URL(location, api), {headers: {"Authorization": "Bearer " + key}});
		const body = await got.json();
		show("created " + created.status + " " + location + "; got " + got.status + " " + body.data.title);
	} catch (e) {
		show("refused: " + e.name);
	}
})();
</script>
`

// pageHandler serves browserPage, calling the API at api with key.
func pageHandler(t *testing.T, api, key, slug string) http.Handler {
	t.Helper()
	js := func(s string) string {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	page := fmt.Sprintf(browserPage, js(api), js(key), js(slug))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	})
}

// newPageServer makes a server for a page, listening but not yet serving,
// so that its origin is known before the API starts with its list of
// origins. Another port of 127.0.0.1 is another origin.
func newPageServer(t *testing.T) (srv *httptest.Server, origin string) {
	t.Helper()
	srv = httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	return srv, "http://" + srv.Listener.Addr().String()
}

// resultInDOM finds the text of #result in a page dumped by chromium.
var resultInDOM = regexp.MustCompile(`<p id="result">(.*?)</p>`)

// showInChromium loads url in headless Chromium and returns the text the
// page shows in #result once its scripts are done.
//
// --dump-dom prints the DOM and exits; --virtual-time-budget makes it wait
// first until the page is idle, network requests included, so the fetches
// have finished (the budget is virtual time: it does not slow the test).
func showInChromium(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--no-default-browser-check",
		"--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=10000",
		"--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("chromium: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("chromium: %v", err)
	}
	m := resultInDOM.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no #result in the page chromium dumped:\n%s", out)
	}
	return html.UnescapeString(string(m[1]))
}

// TestBrowserCallsTheAPIFromAnotherOrigin runs fetch() in a real browser,
// which enforces CORS as no Go client does: a page on an allowed origin
// creates and reads a tutorial; a page on another origin is refused, and
// its create never reaches the API.
func TestBrowserCallsTheAPIFromAnotherOrigin(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		// CI installs chromium: there, a skip would hide a test that never ran.
		if os.Getenv("CI") != "" {
			t.Fatalf("no browser at %s, and CI must run this test: %v", chromiumPath, err)
		}
		t.Skipf("no browser at %s (apt-get install chromium): %v", chromiumPath, err)
	}
	allowedPage, allowedOrigin := newPageServer(t)
	refusedPage, _ := newPageServer(t)
	cfg := testConfig(t)
	cfg.corsOrigins = []string{allowedOrigin}
	// SQLite only: what a browser enforces is the handler's headers, the
	// same on either engine, and a browser is the slowest thing the tests run.
	api := newTestServerWith(t, sqliteEngine, cfg)
	allowedPage.Config.Handler = pageHandler(t, api.url, api.writeKey, "from-a-browser")
	allowedPage.Start()
	refusedPage.Config.Handler = pageHandler(t, api.url, api.writeKey, "from-elsewhere")
	refusedPage.Start()

	t.Run("allowed origin", func(t *testing.T) {
		got := showInChromium(t, allowedPage.URL)
		want := "created 201 /api/v1/tutorials/from-a-browser; got 200 From a browser"
		if got != want {
			t.Errorf("the page shows %q, want %q", got, want)
		}
	})
	t.Run("another origin", func(t *testing.T) {
		got := showInChromium(t, refusedPage.URL)
		if want := "refused: TypeError"; got != want {
			t.Errorf("the page shows %q, want %q", got, want)
		}
		// The preflight failed, so the browser never sent the POST.
		if _, err := api.store.TutorialBySlug(context.Background(), "from-elsewhere"); !errors.Is(err, ErrNotFound) {
			t.Errorf("tutorial from-elsewhere: got %v, want ErrNotFound: the create reached the API", err)
		}
	})
}
