package main

// These tests hold the list's Link header: its pages, its cursors, and
// the origin it names behind a proxy.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ---- Paging links: the Link header of the list ----

var linkPattern = regexp.MustCompile(`<([^>]*)>; rel="([^"]*)"`)

// links parses a Link header into its targets by relation, and checks that
// nothing else is in it.
func links(t *testing.T, header string) map[string]string {
	t.Helper()
	got := map[string]string{}
	rest := linkPattern.ReplaceAllStringFunc(header, func(link string) string {
		m := linkPattern.FindStringSubmatch(link)
		if _, dup := got[m[2]]; dup {
			t.Errorf("rel=%q twice in %q", m[2], header)
		}
		got[m[2]] = m[1]
		return ""
	})
	if rest != "" && regexp.MustCompile(`^(, )*$`).FindString(rest) == "" {
		t.Errorf("Link %q has more than links: %q", header, rest)
	}
	return got
}

// makeCursor is the cursor of the position of the item with key and id in
// sort, as internal/cursor documents it: base64url of the JSON [sort, key, id].
func makeCursor(sort, key string, id int64) string {
	b, _ := json.Marshal([]any{sort, key, id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestLinkHeader(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ts.seed(t, 7, func(i int) map[string]any {
			return map[string]any{"category": []string{"backend", "frontend"}[i%2]}
		})
		const list = "/api/v1/tutorials"
		abs := ts.url + list // links are absolute: what clients such as Python's requests need
		// Every tutorial is published at the same time, so the list is in id
		// order: t006 has id 7, t000 id 1.
		after := func(id int64) string {
			return "cursor=" + makeCursor("-published_at", "2026-01-01T00:00:00Z", id) + "&"
		}

		tests := []struct {
			name  string
			query string
			want  map[string]string
		}{
			{"the first page: next starts after its last item", "?per_page=2", map[string]string{
				"first": abs + "?page=1&per_page=2",
				"next":  abs + "?" + after(6) + "page=2&per_page=2",
				"last":  abs + "?page=4&per_page=2",
			}},
			{"a middle page", "?per_page=2&page=2", map[string]string{
				"first": abs + "?page=1&per_page=2",
				"prev":  abs + "?page=1&per_page=2",
				"next":  abs + "?" + after(4) + "page=3&per_page=2",
				"last":  abs + "?page=4&per_page=2",
			}},
			{"the last page has no next", "?per_page=2&page=4", map[string]string{
				"first": abs + "?page=1&per_page=2",
				"prev":  abs + "?page=3&per_page=2",
				"last":  abs + "?page=4&per_page=2",
			}},
			{"a page past the end goes back to the last", "?per_page=2&page=9", map[string]string{
				"first": abs + "?page=1&per_page=2",
				"prev":  abs + "?page=4&per_page=2",
				"last":  abs + "?page=4&per_page=2",
			}},
			{"the one page of a short list", "", map[string]string{
				"first": abs + "?page=1",
				"last":  abs + "?page=1",
			}},
			{"an empty list has one empty page", "?category=none", map[string]string{
				"first": abs + "?category=none&page=1",
				"last":  abs + "?category=none&page=1",
			}},
			{"past the end of an empty list", "?category=none&page=3", map[string]string{
				"first": abs + "?category=none&page=1",
				"prev":  abs + "?category=none&page=1",
				"last":  abs + "?category=none&page=1",
			}},
			{"the largest page", "?page=99999999999999999999", map[string]string{
				"first": abs + "?page=1",
				"prev":  abs + "?page=1",
				"last":  abs + "?page=1",
			}},
			{"every known parameter is kept; an unknown one is not", "?q=tutorial&category=frontend&sort=title&per_page=1&x=1&x=2&difficulty=beginner&page=1", map[string]string{
				"first": abs + "?category=frontend&difficulty=beginner&page=1&per_page=1&q=tutorial&sort=title",
				"next": abs + "?category=frontend&cursor=" + makeCursor("title", "Tutorial 001", 2) +
					"&difficulty=beginner&page=2&per_page=1&q=tutorial&sort=title",
				"last": abs + "?category=frontend&difficulty=beginner&page=3&per_page=1&q=tutorial&sort=title",
			}},
			{"per_page is kept as it counts: over 100 is 100", "?per_page=500", map[string]string{
				"first": abs + "?page=1&per_page=100",
				"last":  abs + "?page=1&per_page=100",
			}},
			{"a default is left out", "?per_page=20&page=01", map[string]string{
				"first": abs + "?page=1",
				"last":  abs + "?page=1",
			}},
			{"a page by cursor is numbered by page", "?" + after(4) + "page=7&per_page=2", map[string]string{
				"first": abs + "?page=1&per_page=2",
				"prev":  abs + "?page=4&per_page=2",
				"next":  abs + "?" + after(2) + "page=8&per_page=2",
				"last":  abs + "?page=4&per_page=2",
			}},
			{"relevance order pages by number", "?q=tutorial&per_page=4", map[string]string{
				"first": abs + "?page=1&per_page=4&q=tutorial",
				"next":  abs + "?page=2&per_page=4&q=tutorial",
				"last":  abs + "?page=2&per_page=4&q=tutorial",
			}},
			{"text is escaped", "?q=tutorial%20%3C%3E%2C%22&page=2&per_page=4", map[string]string{
				"first": abs + "?page=1&per_page=4&q=tutorial+%3C%3E%2C%22",
				"prev":  abs + "?page=1&per_page=4&q=tutorial+%3C%3E%2C%22",
				"last":  abs + "?page=2&per_page=4&q=tutorial+%3C%3E%2C%22",
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp := ts.request(t, "GET", list+tt.query, ts.readKey, "")
				if resp.status != http.StatusOK {
					t.Fatalf("status %d %q", resp.status, resp.error)
				}
				if diff := cmp.Diff(tt.want, links(t, resp.header.Get("Link"))); diff != "" {
					t.Errorf("Link %q (-want +got):\n%s", resp.header.Get("Link"), diff)
				}
			})
		}

		t.Run("following next visits every item once", func(t *testing.T) {
			var got []string
			next := list + "?per_page=3&category=backend"
			for pages := 0; next != ""; pages++ {
				if pages > 10 {
					t.Fatal("next never ends")
				}
				resp := ts.request(t, "GET", next, ts.readKey, "")
				got = append(got, slugs(decodeData[tutorialPage](t, resp).Tutorials)...)
				link := links(t, resp.header.Get("Link"))["next"]
				if link != "" && !strings.HasPrefix(link, abs) {
					t.Fatalf("next is %q, want a URL of this server", link)
				}
				next = strings.TrimPrefix(link, ts.url)
			}
			if diff := cmp.Diff([]string{"t006", "t004", "t002", "t000"}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})

		t.Run("a bad query has no links", func(t *testing.T) {
			resp := ts.request(t, "GET", list+"?page=0", ts.readKey, "")
			resp.wantError(t, http.StatusBadRequest, "page must be an integer of at least 1")
			if got := resp.header.Get("Link"); got != "" {
				t.Errorf("Link = %q, want none", got)
			}
		})
	})
}

// Behind a reverse proxy, the links name the proxy, as the client reached
// it, only when the server trusts the proxy's X-Forwarded- headers; a
// client's own such headers are never trusted.
func TestLinkHeaderBehindAProxy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		tests := []struct {
			name       string
			trustProxy bool
			headers    []string // sent by the client
			want       func(proxy, server string) string
		}{
			{"trusted: the proxy's host and scheme", true, nil,
				func(proxy, _ string) string { return proxy }},
			{"trusted: a forwarded https", true, []string{"X-Forwarded-Proto", "https"},
				func(proxy, _ string) string { return "https" + strings.TrimPrefix(proxy, "http") }},
			{"not trusted: the server's own", false, []string{"X-Forwarded-Proto", "https"},
				func(_, server string) string { return server }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cfg := testConfig(t)
				cfg.trustProxy = tt.trustProxy
				ts := newTestServerWith(t, e, cfg)
				backend, err := url.Parse(ts.url)
				if err != nil {
					t.Fatal(err)
				}
				proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(backend)
					// As a proxy in front of TLS would say; a client's own
					// X-Forwarded-Proto, sent below, stands for that here.
					proto := pr.In.Header.Get("X-Forwarded-Proto")
					pr.SetXForwarded()
					if proto != "" {
						pr.Out.Header.Set("X-Forwarded-Proto", proto)
					}
				}})
				t.Cleanup(proxy.Close)
				through := &testServer{url: proxy.URL}
				resp := through.request(t, "GET", "/api/v1/tutorials", ts.readKey, "", tt.headers...)
				if resp.status != http.StatusOK {
					t.Fatalf("status %d %q", resp.status, resp.error)
				}
				want := map[string]string{"first": tt.want(proxy.URL, ts.url) + "/api/v1/tutorials?page=1", "last": tt.want(proxy.URL, ts.url) + "/api/v1/tutorials?page=1"}
				if diff := cmp.Diff(want, links(t, resp.header.Get("Link"))); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}

		t.Run("a forwarded host that is not a host is ignored", func(t *testing.T) {
			cfg := testConfig(t)
			cfg.trustProxy = true
			ts := newTestServerWith(t, e, cfg)
			resp := ts.request(t, "GET", "/api/v1/tutorials", ts.readKey, "", "X-Forwarded-Host", "evil.example>; rel=x")
			want := map[string]string{"first": ts.url + "/api/v1/tutorials?page=1", "last": ts.url + "/api/v1/tutorials?page=1"}
			if diff := cmp.Diff(want, links(t, resp.header.Get("Link"))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	})
}
