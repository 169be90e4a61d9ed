package main

// These tests hold CORS to what -cors-origins allows, and the setting to
// what an origin is.

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// corsHeaders picks out of h the headers CORS is made of, joined as they
// would be on one line, so that a test can compare them as one value.
func corsHeaders(h http.Header) map[string]string {
	got := map[string]string{}
	for name, values := range h {
		if strings.HasPrefix(name, "Access-Control-") || name == "Vary" {
			got[name] = strings.Join(values, ", ")
		}
	}
	return got
}

// The headers of an allowed origin's preflight, and of its real requests.
var (
	wantPreflight = map[string]string{
		"Access-Control-Allow-Origin":  "https://app.example",
		"Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
		"Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match, If-None-Match, X-Request-ID",
		"Access-Control-Max-Age":       "7200",
		"Vary":                         "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	}
	wantAllowed = map[string]string{
		"Access-Control-Allow-Origin":   "https://app.example",
		"Access-Control-Expose-Headers": "Location, ETag, Link, RateLimit, RateLimit-Policy, Retry-After, X-Request-ID",
		"Vary":                          "Origin",
	}
	wantRefused = map[string]string{"Vary": "Origin"}
	wantNone    = map[string]string{}
)

func TestCORS(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		cfg := testConfig(t)
		cfg.corsOrigins = []string{"https://app.example", "http://localhost:5173"}
		withCORS := newTestServerWith(t, e, cfg)
		withoutCORS := newTestServer(t, e)
		withCORS.create(t, map[string]any{"title": "Go", "slug": "go"})
		withoutCORS.create(t, map[string]any{"title": "Go", "slug": "go"})

		preflight := func(origin, method string) []string {
			return []string{"Origin", origin, "Access-Control-Request-Method", method,
				"Access-Control-Request-Headers", "authorization, content-type"}
		}
		tests := []struct {
			name         string
			ts           *testServer
			method, path string
			key          string
			headers      []string
			status       int
			want         map[string]string
		}{
			{"preflight of a create from an allowed origin is 204",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("https://app.example", "POST"), 204, wantPreflight},
			{"preflight of a delete from an allowed origin is 204",
				withCORS, "OPTIONS", "/api/v1/tutorials/go", "", preflight("https://app.example", "DELETE"), 204, wantPreflight},
			{"preflight from a second allowed origin echoes that origin",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("http://localhost:5173", "GET"), 204,
				map[string]string{
					"Access-Control-Allow-Origin":  "http://localhost:5173",
					"Access-Control-Allow-Methods": wantPreflight["Access-Control-Allow-Methods"],
					"Access-Control-Allow-Headers": wantPreflight["Access-Control-Allow-Headers"],
					"Access-Control-Max-Age":       "7200",
					"Vary":                         wantPreflight["Vary"],
				}},
			{"preflight from another origin is refused with the usual 405",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("https://evil.example", "POST"), 405, wantRefused},
			{"an origin is matched exactly: not another scheme",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("http://app.example", "POST"), 405, wantRefused},
			{"an origin is matched exactly: not another port",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("https://app.example:8443", "POST"), 405, wantRefused},
			{"an origin is matched exactly: not a subdomain",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("https://sub.app.example", "POST"), 405, wantRefused},
			{"the opaque origin null is refused",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("null", "POST"), 405, wantRefused},
			{"OPTIONS that is not a preflight still gets 405",
				withCORS, "OPTIONS", "/api/v1/tutorials", "", []string{"Origin", "https://app.example"}, 405, wantAllowed},
			{"a read from an allowed origin can be read by the page",
				withCORS, "GET", "/api/v1/tutorials/go", "read", []string{"Origin", "https://app.example"}, 200, wantAllowed},
			{"an error for an allowed origin can be read by the page too",
				withCORS, "GET", "/api/v1/tutorials", "", []string{"Origin", "https://app.example"}, 401, wantAllowed},
			{"a read from another origin gets no CORS headers",
				withCORS, "GET", "/api/v1/tutorials/go", "read", []string{"Origin", "https://evil.example"}, 200, wantRefused},
			{"a request without Origin gets no CORS headers",
				withCORS, "GET", "/api/v1/tutorials/go", "read", nil, 200, wantRefused},
			{"without -cors-origins a preflight is a 405",
				withoutCORS, "OPTIONS", "/api/v1/tutorials", "", preflight("https://app.example", "POST"), 405, wantNone},
			{"without -cors-origins a read gets no CORS headers",
				withoutCORS, "GET", "/api/v1/tutorials/go", "read", []string{"Origin", "https://app.example"}, 200, wantNone},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				key := ""
				if tt.key == "read" {
					key = tt.ts.readKey
				}
				resp := tt.ts.request(t, tt.method, tt.path, key, "", tt.headers...)
				if resp.status != tt.status {
					t.Errorf("status %d %q, want %d", resp.status, resp.error, tt.status)
				}
				if diff := cmp.Diff(tt.want, corsHeaders(resp.header)); diff != "" {
					t.Errorf("CORS headers (-want +got):\n%s", diff)
				}
				if tt.status == http.StatusMethodNotAllowed && resp.error != "Method not allowed" {
					t.Errorf("error %q, want the usual Method not allowed", resp.error)
				}
			})
		}
	})
}

func TestCORSOriginsSetting(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"off by default", "", nil, nil},
		{"from the flag, spaces and empty items ignored", "",
			[]string{"-cors-origins", " https://a.example , http://localhost:5173,,"},
			[]string{"https://a.example", "http://localhost:5173"}},
		{"from the environment", "https://a.example", nil, []string{"https://a.example"}},
		{"the flag beats the environment", "https://a.example",
			[]string{"-cors-origins", "https://b.example"}, []string{"https://b.example"}},
		{"an empty flag turns the environment's list off", "https://a.example",
			[]string{"-cors-origins", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(name string) string {
				if name == "TUTORIALS_CORS_ORIGINS" {
					return tt.env
				}
				return ""
			}
			cfg, err := parseServeConfig(tt.args, getenv)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, cfg.corsOrigins); diff != "" {
				t.Errorf("corsOrigins (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCORSOriginsSettingRefusesWhatIsNotAnOrigin(t *testing.T) {
	for _, bad := range []string{
		"*",
		"app.example",
		"https://",
		"ftp://app.example",
		"https://app.example/",
		"https://app.example/api",
		"https://app.example?x=1",
		"https://app.example#top",
		"https://user@app.example",
		"https://App.Example",
	} {
		t.Run(bad, func(t *testing.T) {
			_, err := parseServeConfig([]string{"-cors-origins", "https://ok.example," + bad}, func(string) string { return "" })
			var usage *usageError
			if !errors.As(err, &usage) {
				t.Fatalf("got %v, want a usage error", err)
			}
			want := `-cors-origins: "` + bad + `" is not an origin like https://app.example.com`
			if err.Error() != want {
				t.Errorf("message %q, want %q", err.Error(), want)
			}
		})
	}
}
