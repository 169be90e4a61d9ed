// Package cors lets pages from named origins call the API from a browser
// (Cross-Origin Resource Sharing):
//
//	origins, err := cors.ParseOrigins("https://app.example.com")
//	h = cors.Allow(origins, h)
//
// An allowed origin gets its own value echoed back, never "*", and never
// Access-Control-Allow-Credentials: keys travel in Authorization, which a
// page must add itself, so no cookie is ever at stake. Any other origin
// gets no CORS header at all, which the browser takes as a refusal.
package cors

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// What a page on an allowed origin may send and read.
const (
	allowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"
	allowHeaders = "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID"
	// Without this list a page could read only the simplest response
	// headers: not where a new tutorial is, nor how long to back off.
	exposeHeaders = "Location, ETag, Link, RateLimit, RateLimit-Policy, Retry-After, X-Request-ID"
	// maxAge lets a browser reuse a preflight for two hours, the most
	// Chromium accepts.
	maxAge = "7200"
)

// ParseOrigins splits a comma-separated list of origins and checks each.
// An origin is compared with the browser's Origin header as a string, so
// each must be written the way a browser writes it: scheme, host and port
// only, in lower case, no trailing slash. "*" is refused on purpose: the
// point of the list is to name the pages that may use a key.
func ParseOrigins(list string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawPath != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
			strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") || o != strings.ToLower(o) {
			return nil, fmt.Errorf("%q is not an origin like https://app.example.com", o)
		}
		origins = append(origins, o)
	}
	return origins, nil
}

// Allow answers the CORS requests of origins in front of next. It must sit
// outside any check of routes or keys, because a preflight carries neither
// a route's method nor a key: it asks whether the real request may be
// sent. A preflight of another origin falls through to next.
func Allow(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The answer depends on Origin, so a cache must not hand one
		// origin's answer to another.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", allowMethods)
			h.Set("Access-Control-Allow-Headers", allowHeaders)
			h.Set("Access-Control-Max-Age", maxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", exposeHeaders)
		next.ServeHTTP(w, r)
	})
}
