package main

// These tests hold openapi.json to the server: every route, status and
// security scheme it describes is the server's.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"tutorials/internal/cache"

	"github.com/google/go-cmp/cmp"
)

// ---- OpenAPI: the document and the routes it describes ----

// openAPIDoc is the part of openapi.json the tests read.
type openAPIDoc struct {
	OpenAPI  string                                `json:"openapi"`
	Security []map[string][]string                 `json:"security"`
	Paths    map[string]map[string]json.RawMessage `json:"paths"` // path -> method -> operation
}

// openAPIOperation is the part of an operation the tests read.
type openAPIOperation struct {
	Security   *[]map[string][]string `json:"security"` // nil: the document's
	Parameters []struct {
		Ref string `json:"$ref"`
	} `json:"parameters"`
	Responses map[string]json.RawMessage `json:"responses"`
}

// openAPIMethods are the keys of a path item that name operations; the
// others (parameters, summary, ...) describe the path.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadOpenAPI parses the embedded document.
func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// operations returns the document's operations by "METHOD /path", the form
// of a ServeMux pattern.
func (doc openAPIDoc) operations(t *testing.T) map[string]openAPIOperation {
	t.Helper()
	ops := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains(openAPIMethods, method) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("openapi.json: %s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return ops
}

// patternRecorder is a router that keeps the patterns addRoutes gives it.
type patternRecorder []string

func (p *patternRecorder) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }

// registeredPatterns returns every pattern addRoutes registers.
func registeredPatterns(t *testing.T, ts *testServer) []string {
	t.Helper()
	var rec patternRecorder
	addRoutes(&rec, testConfig(t), ts.store, newAuthenticator(testConfig(t), ts.store, newKeyCache(cache.NewVersions(ts.store.Version), ts.clock.now), ts.usage, ts.clock.now), newAnswerCaches(cache.NewVersions(ts.store.Version), ts.clock.now), ts.clock.now)
	return rec
}

// routeMismatches lists, sorted, every route registered but not described
// and every operation described but not registered.
func routeMismatches(patterns []string, described map[string]openAPIOperation) []string {
	var problems []string
	registered := map[string]bool{}
	for _, p := range patterns {
		registered[p] = true
		if _, ok := described[p]; !ok {
			problems = append(problems, fmt.Sprintf("route %q is not in openapi.json", p))
		}
	}
	for op := range described {
		if !registered[op] {
			problems = append(problems, fmt.Sprintf("openapi.json describes %q, which is not a route", op))
		}
	}
	slices.Sort(problems)
	return problems
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		doc := loadOpenAPI(t)
		if problems := routeMismatches(registeredPatterns(t, ts), doc.operations(t)); len(problems) > 0 {
			t.Errorf("addRoutes and openapi.json disagree:\n%s", strings.Join(problems, "\n"))
		}
	})
}

// The check above must fail when the two drift apart, in either direction:
// a route added without the spec, or a spec entry for a route removed.
func TestOpenAPIRouteCheckCatchesDrift(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		ops := loadOpenAPI(t).operations(t)
		patterns := slices.DeleteFunc(registeredPatterns(t, ts), func(p string) bool { return p == "DELETE /api/v1/tutorials/{slug}" })
		patterns = append(patterns, "GET /api/v1/tags", "POST /api/v1/tutorials/{slug}")
		want := []string{
			`openapi.json describes "DELETE /api/v1/tutorials/{slug}", which is not a route`,
			`route "GET /api/v1/tags" is not in openapi.json`,
			`route "POST /api/v1/tutorials/{slug}" is not in openapi.json`,
		}
		if diff := cmp.Diff(want, routeMismatches(patterns, ops)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

func TestOpenAPIDocumentIsServedWithoutAKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		get := func(headers ...string) response {
			t.Helper()
			return ts.request(t, "GET", "/api/v1/openapi.json", "", "", headers...)
		}

		for _, auth := range []string{"", "Bearer tut_wrong", "Basic eDp5"} {
			resp := get("Authorization", auth)
			if resp.status != http.StatusOK {
				t.Fatalf("Authorization %q: status %d, want 200", auth, resp.status)
			}
			// The document is the envelope's data, byte for byte as in the repository.
			var got, want any
			if err := json.Unmarshal(resp.data, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(openAPIDocument, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("data is not openapi.json (-want +got):\n%s", diff)
			}
		}
		if doc := loadOpenAPI(t); !strings.HasPrefix(doc.OpenAPI, "3.1.") {
			t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
		}

		etag := get().header.Get("ETag")
		if resp := get("If-None-Match", etag); resp.status != http.StatusNotModified || len(resp.body) != 0 {
			t.Errorf("If-None-Match %s: status %d with %d bytes, want 304 with none", etag, resp.status, len(resp.body))
		}
		// Other methods are answered as on any route.
		ts.request(t, "POST", "/api/v1/openapi.json", "", "").wantError(t, http.StatusMethodNotAllowed, "Method not allowed")
	})
}

// The bearer scheme the document claims is the one the server enforces:
// every operation that needs a key answers 401 without one, and every
// operation that needs none does not.
func TestOpenAPISecurityMatchesTheServer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		ts := newTestServer(t, e)
		doc := loadOpenAPI(t)
		if diff := cmp.Diff([]map[string][]string{{"bearerAuth": {}}}, doc.Security); diff != "" {
			t.Fatalf("document security (-want +got):\n%s", diff)
		}
		for name, op := range doc.operations(t) {
			t.Run(name, func(t *testing.T) {
				method, path, _ := strings.Cut(name, " ")
				path = strings.ReplaceAll(path, "{slug}", "go")
				resp := ts.request(t, method, path, "", "")
				needsKey := op.Security == nil || len(*op.Security) > 0
				if got := resp.status == http.StatusUnauthorized; got != needsKey {
					t.Errorf("without a key: status %d; the document says a key is needed: %v", resp.status, needsKey)
				}
			})
		}
	})
}

// Every status the contract lists is described where it can happen.
func TestOpenAPIListsTheStatusesOfTheContract(t *testing.T) {
	ops := loadOpenAPI(t).operations(t)
	has := func(op openAPIOperation, statuses ...string) []string {
		var missing []string
		for _, s := range statuses {
			if _, ok := op.Responses[s]; !ok {
				missing = append(missing, s)
			}
		}
		return missing
	}
	params := func(op openAPIOperation) []string {
		var refs []string
		for _, p := range op.Parameters {
			refs = append(refs, p.Ref)
		}
		return refs
	}
	seen := map[string]bool{}
	for name, op := range ops {
		for status := range op.Responses {
			seen[status] = true
		}
		method, _, _ := strings.Cut(name, " ")
		var missing []string
		if op.Security == nil { // needs a key
			missing = append(missing, has(op, "401", "429", "500")...)
			if method != "GET" {
				missing = append(missing, has(op, "403")...)
			}
		}
		if slices.Contains(params(op), "#/components/parameters/IfMatch") {
			missing = append(missing, has(op, "412")...)
		}
		if slices.Contains(params(op), "#/components/parameters/IfNoneMatch") {
			missing = append(missing, has(op, "304")...)
		}
		if method == "POST" || method == "PUT" || method == "PATCH" {
			missing = append(missing, has(op, "400", "409", "413", "415")...)
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks %v", name, missing)
		}
	}
	// 405 and the 404 of an unknown path belong to no operation: the info
	// description covers them.
	for _, status := range []string{"200", "201", "204", "304", "400", "401", "403", "404", "409", "412", "413", "415", "429", "500", "503"} {
		if !seen[status] {
			t.Errorf("no operation describes %s", status)
		}
	}
}

// A rule the server enforces is in the document too, where a generated
// client or a fuzzer can read it: for each value, the document's pattern
// and the server's answer agree. (JSON Schema patterns are ECMA-262; the
// ones used here are written to mean the same in Go's regexp.)
func TestOpenAPIPatternsAgreeWithTheServer(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		var doc struct {
			Components struct {
				Parameters map[string]struct {
					Schema struct{ Pattern string } `json:"schema"`
				} `json:"parameters"`
				Schemas map[string]struct {
					Properties map[string]struct{ Pattern string } `json:"properties"`
				} `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
			t.Fatal(err)
		}
		fields := doc.Components.Schemas["TutorialFields"].Properties
		tests := []struct {
			name    string
			pattern string
			values  []string
			// accepted sends value and reports whether the server took it.
			accepted func(ts *testServer, value string) bool
		}{
			{"q", doc.Components.Parameters["Q"].Schema.Pattern,
				[]string{"", "  ", "go", "é", "42", "***", "-", "🙂", "c++"},
				func(ts *testServer, v string) bool {
					return ts.request(t, "GET", "/api/v1/tutorials?q="+url.QueryEscape(v), ts.readKey, "").status == http.StatusOK
				}},
			{"title", fields["title"].Pattern,
				[]string{"Go", " Go ", "\t", " ", "\u00a0x", "\u00a0", "\u2003", "\v", "\u0085"},
				func(ts *testServer, v string) bool {
					body := mustJSON(t, map[string]any{"title": v, "slug": "s"})
					resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body)
					ts.request(t, "DELETE", "/api/v1/tutorials/s", ts.writeKey, "")
					return resp.status == http.StatusCreated
				}},
			{"category", fields["category"].Pattern,
				[]string{"go", " go", "\t", "  ", "\u3000"},
				func(ts *testServer, v string) bool {
					body := mustJSON(t, map[string]any{"title": "T", "slug": "s", "category": v})
					resp := ts.request(t, "POST", "/api/v1/tutorials", ts.writeKey, body)
					ts.request(t, "DELETE", "/api/v1/tutorials/s", ts.writeKey, "")
					return resp.status == http.StatusCreated
				}},
		}
		ts := newTestServer(t, e)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.pattern == "" {
					t.Fatalf("openapi.json gives %s no pattern", tt.name)
				}
				re := regexp.MustCompile(tt.pattern)
				for _, v := range tt.values {
					if doc, server := re.MatchString(v), tt.accepted(ts, v); doc != server {
						t.Errorf("%s %q: the document's pattern says %v, the server %v", tt.name, v, doc, server)
					}
				}
			})
		}
	})
}

// The document's own description says how it is served: in the envelope,
// like every other answer (it once said otherwise).
func TestOpenAPIDescriptionNamesTheRealExceptions(t *testing.T) {
	var doc struct {
		Info struct{ Description string } `json:"info"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"this document is served in the envelope too", "`400`", "`431`"} {
		if !strings.Contains(doc.Info.Description, want) {
			t.Errorf("info.description does not say %q:\n%s", want, doc.Info.Description)
		}
	}
}
