package main

// The fuzz targets throw generated input at the real handler on a real
// database and hold every answer to the contract. Each target carries its own
// oracle: a second, deliberately plain reading of the rules in API.md, so that
// a 2xx for input the contract forbids is caught, not only a panic or a 5xx.
//
// Their seed corpora live in testdata/fuzz/<target>, and run as ordinary
// tests in every go test. To search for new failures, one target at a time:
//
//	go test -run '^$' -fuzz '^FuzzTutorialBody$' -fuzztime 10m -parallel 1
//
// A failure the fuzzer finds is written to testdata/fuzz as a new file: keep
// it there, so the bug stays fixed.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Fixed keys, so that seed files can hold a valid Authorization header.
const (
	fuzzWriteKey   = keyPrefix + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	fuzzReadKey    = keyPrefix + "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	fuzzRevokedKey = keyPrefix + "00000000000000000000000000000000ffffffffffffffffffffffffffffffff"
)

// fuzzServer is the handler of a server with rate limiting off (every input
// would otherwise soon be a 429), on a fresh test database that also holds
// the fixed keys. The targets call the handler directly, without a
// listener: an HTTP client would refuse much of what they generate (a
// header with a control character, say) before the server saw it.
type fuzzServer struct {
	handler http.Handler
	store   Store
}

func newFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	ctx := context.Background()
	// SQLite only: the targets hold the handler's decoding and checks, which
	// come before any engine, and a fuzz run wants every execution it can get.
	ts := newTestDatabase(f, sqliteEngine)
	for _, k := range []struct{ key, scope string }{
		{fuzzWriteKey, scopeWrite}, {fuzzReadKey, scopeRead}, {fuzzRevokedKey, scopeWrite},
	} {
		rec, err := ts.store.CreateKey(ctx, APIKey{Name: "fuzz", Scope: k.scope, Prefix: k.key[:keyShownLen], CreatedAt: ts.clock.now()}, hashKey(k.key))
		if err != nil {
			f.Fatal(err)
		}
		if k.key == fuzzRevokedKey {
			if err := ts.store.RevokeKey(ctx, rec.ID); err != nil {
				f.Fatal(err)
			}
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return &fuzzServer{handler: newServer(testConfig(f), logger, ts.store, ts.usage, ts.clock.now), store: ts.store}
}

// serve runs req through the handler, checks the envelope and the
// invariants every answer must keep, and returns the response.
func (fs *fuzzServer) serve(t *testing.T, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	fs.handler.ServeHTTP(rec, req)
	resp := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkEnvelope(t, req.Method, &resp)
	if resp.status >= 500 {
		t.Fatalf("%d %q: generated input must never cause a server error", resp.status, resp.error)
	}
	return resp
}

// ---- The request body: decoder and validator ----

func FuzzTutorialBody(f *testing.F) {
	fs := newFuzzServer(f)
	ctx := context.Background()
	const target = "fuzz-target"
	// ensureTarget puts back the tutorial that PATCH bodies are sent to.
	ensureTarget := func(t *testing.T) {
		if _, err := fs.store.TutorialBySlug(ctx, target); err == nil {
			return
		}
		in := TutorialInput{Title: "Target", Slug: target, Category: defaultCategory, Difficulty: defaultDifficulty}
		if _, err := fs.store.CreateTutorial(ctx, in, time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	f.Fuzz(func(t *testing.T, patch bool, body []byte) {
		ensureTarget(t)
		method, path, mode := "POST", "/api/v1/tutorials", wholeTutorial
		if patch {
			method, path, mode = "PATCH", "/api/v1/tutorials/"+target, tutorialChange
		}
		req := httptest.NewRequest(method, path, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+fuzzWriteKey)
		req.Header.Set("Content-Type", "application/json")
		resp := fs.serve(t, req)

		want, valid := oracleTutorial(body, mode)
		switch {
		case !valid && resp.status < 300:
			t.Fatalf("%d for a body the contract refuses: %q", resp.status, body)
		case !valid:
			return
		case resp.status == http.StatusConflict:
			return // a valid body whose slug is taken
		case resp.status >= 300:
			t.Fatalf("%d %q for a valid body: %q", resp.status, resp.error, body)
		}

		// A success stores the text exactly as sent (trimmed where the
		// contract says so) and returns it.
		got := decodeData[Tutorial](t, resp)
		if patch {
			want = mergeOracle(oracleFields{"title": "Target", "slug": target, "excerpt": "", "content": "",
				"category": defaultCategory, "difficulty": defaultDifficulty, "estimated_time": (*int64)(nil)}, want)
		}
		gotFields := oracleFields{"title": got.Title, "slug": got.Slug, "excerpt": got.Excerpt, "content": got.Content,
			"category": got.Category, "difficulty": got.Difficulty, "estimated_time": got.EstimatedTime}
		if p, ok := want["published_at"]; ok {
			gotFields["published_at"] = got.PublishedAt.Format(time.RFC3339)
			want["published_at"] = p.(time.Time).UTC().Truncate(time.Second).Format(time.RFC3339)
		}
		if diff := cmp.Diff(want, gotFields); diff != "" {
			t.Errorf("stored tutorial differs from the body (-want +got):\n%s\nbody: %q", diff, body)
		}
		// Start the next input from the same state: only the target exists.
		del := httptest.NewRequest("DELETE", "/api/v1/tutorials/"+got.Slug, nil)
		del.Header.Set("Authorization", "Bearer "+fuzzWriteKey)
		if resp := fs.serve(t, del); resp.status != http.StatusNoContent {
			t.Fatalf("deleting %q: %d %q", got.Slug, resp.status, resp.error)
		}
	})
}

// decodingReplaces reports whether encoding/json, decoding body, would put
// U+FFFD where the body has none: the body holds an escape that is no
// character. It counts the U+FFFD the body really holds, as UTF-8 or as the
// escape \ufffd, against those of the decoded strings.
func decodingReplaces(body []byte) bool {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false // not JSON: refused for that
	}
	held := bytes.Count(body, []byte("\uFFFD")) + len(regexp.MustCompile(`(?i)\\ufffd`).FindAll(body, -1))
	var decoded func(any) int
	decoded = func(v any) int {
		n := 0
		switch v := v.(type) {
		case string:
			n = strings.Count(v, "\uFFFD")
		case []any:
			for _, e := range v {
				n += decoded(e)
			}
		case map[string]any:
			for k, e := range v {
				n += strings.Count(k, "\uFFFD") + decoded(e)
			}
		}
		return n
	}
	return decoded(v) > held
}

// oracleFields holds the fields of a tutorial by JSON name, as the oracle
// expects the server to store them.
type oracleFields map[string]any

func mergeOracle(base, change oracleFields) oracleFields {
	for k, v := range change {
		base[k] = v
	}
	return base
}

var oracleSlug = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// oracleTutorial reads body by the rules of section 3 of the contract and
// returns what the server must store, and whether the body is valid at all.
func oracleTutorial(body []byte, mode inputMode) (oracleFields, bool) {
	// Text that is not UTF-8, as bytes or as an escape of half a surrogate
	// pair, is refused: decoded, it would come back with U+FFFD in its place.
	if !utf8.Valid(body) || decodingReplaces(body) {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF { // one JSON value, nothing after it
		return nil, false
	}
	want := oracleFields{}
	if mode == wholeTutorial {
		if _, ok := obj["title"]; !ok {
			return nil, false
		}
		if _, ok := obj["slug"]; !ok {
			return nil, false
		}
		want = oracleFields{"excerpt": "", "content": "", "category": "backend", "difficulty": "beginner", "estimated_time": (*int64)(nil)}
	}
	for name, v := range obj {
		s, isString := v.(string)
		if strings.ContainsRune(s, 0) {
			return nil, false // no field may hold NUL
		}
		chars := utf8.RuneCountInString(s)
		trimmed := strings.TrimSpace(s)
		switch name {
		case "title":
			if !isString || trimmed == "" || utf8.RuneCountInString(trimmed) > 200 {
				return nil, false
			}
			want[name] = trimmed
		case "slug":
			if !isString || len(s) > 100 || !oracleSlug.MatchString(s) {
				return nil, false
			}
			want[name] = s
		case "excerpt", "content":
			limit := 500
			if name == "content" {
				limit = 200_000
			}
			if !isString || chars > limit {
				return nil, false
			}
			want[name] = s
		case "category":
			if !isString || trimmed == "" || utf8.RuneCountInString(trimmed) > 50 {
				return nil, false
			}
			want[name] = trimmed
		case "difficulty":
			if !isString || !slices.Contains([]string{"beginner", "intermediate", "advanced"}, s) {
				return nil, false
			}
			want[name] = s
		case "estimated_time":
			if v == nil {
				want[name] = (*int64)(nil)
				break
			}
			n, ok := v.(json.Number)
			if !ok {
				return nil, false
			}
			i, ok := new(big.Int).SetString(string(n), 10)
			if !ok || i.Sign() < 0 || i.Cmp(big.NewInt(100_000)) > 0 {
				return nil, false
			}
			want[name] = ptr(i.Int64())
		case "published_at":
			t, err := time.Parse(time.RFC3339, s)
			// Stored and returned in UTC: a time whose UTC year has not four
			// digits cannot be written in the contract's format.
			if !isString || err != nil || t.UTC().Year() < 0 || t.UTC().Year() > 9999 {
				return nil, false
			}
			want[name] = t
		default:
			return nil, false
		}
	}
	return want, true
}

// ---- The list query ----

func FuzzListQuery(f *testing.F) {
	fs := newFuzzServer(f)
	ctx := context.Background()
	for i, s := range []struct{ slug, category, difficulty string }{
		{"go", "backend", "beginner"}, {"css", "frontend", "advanced"}, {"sql", "backend", "intermediate"},
	} {
		in := TutorialInput{Title: s.slug, Slug: s.slug, Category: s.category, Difficulty: s.difficulty}
		if _, err := fs.store.CreateTutorial(ctx, in, time.Date(2026, 1, i+1, 0, 0, 0, 0, time.UTC)); err != nil {
			f.Fatal(err)
		}
	}

	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest("GET", "/api/v1/tutorials", nil)
		req.URL.RawQuery = rawQuery
		req.Header.Set("Authorization", "Bearer "+fuzzReadKey)
		resp := fs.serve(t, req)

		page, perPage, valid := oracleListQuery(rawQuery)
		switch {
		case !valid && resp.status == http.StatusOK:
			t.Fatalf("200 for a query the contract refuses: %q", rawQuery)
		case valid && resp.status != http.StatusOK:
			t.Fatalf("%d %q for a valid query: %q", resp.status, resp.error, rawQuery)
		case !valid:
			if resp.status != http.StatusBadRequest {
				t.Fatalf("%d %q for a bad query, want 400: %q", resp.status, resp.error, rawQuery)
			}
			return
		}
		got := decodeData[tutorialPage](t, resp)
		if got.Page != page || got.PerPage != perPage {
			t.Errorf("page %d, per_page %d; want %d, %d for %q", got.Page, got.PerPage, page, perPage, rawQuery)
		}
		if int64(len(got.Tutorials)) > got.PerPage || got.Tutorials == nil {
			t.Errorf("%d items on a page of %d (nil: %v)", len(got.Tutorials), got.PerPage, got.Tutorials == nil)
		}
		if got.TotalPages != (got.Total+got.PerPage-1)/got.PerPage {
			t.Errorf("total_pages %d for total %d at %d per page", got.TotalPages, got.Total, got.PerPage)
		}
	})
}

// oracleListQuery reads a list query by section 4 of the contract: the page
// and per_page the server must answer with, and whether it is valid.
func oracleListQuery(rawQuery string) (page, perPage int64, valid bool) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, 0, false // a ";" or a bad escape: the contract refuses the whole query
	}
	positive := func(name string, def int64) (int64, bool) {
		s := q.Get(name)
		if s == "" {
			return def, true
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok || n.Sign() < 1 {
			return 0, false
		}
		if !n.IsInt64() {
			return 1<<63 - 1, true
		}
		return n.Int64(), true
	}
	page, okPage := positive("page", 1)
	perPage, okPerPage := positive("per_page", 20)
	perPage = min(perPage, 100)
	d, s := q.Get("difficulty"), q.Get("sort")
	okDifficulty := d == "" || slices.Contains([]string{"beginner", "intermediate", "advanced"}, d)
	okSort := s == "" || slices.Contains([]string{"-published_at", "published_at", "title", "-title"}, s)
	return page, perPage, okPage && okPerPage && okDifficulty && okSort
}

// ---- The Authorization header ----

func FuzzAuthorization(f *testing.F) {
	fs := newFuzzServer(f)

	f.Fuzz(func(t *testing.T, header string) {
		req := httptest.NewRequest("GET", "/api/v1/tutorials", nil)
		req.Header.Set("Authorization", header)
		resp := fs.serve(t, req)

		valid := oracleAuthorization(header)
		switch {
		case valid && resp.status != http.StatusOK:
			t.Fatalf("%d %q for a valid header %q", resp.status, resp.error, header)
		case !valid && resp.status != http.StatusUnauthorized:
			t.Fatalf("%d %q for header %q, want 401", resp.status, resp.error, header)
		case !valid && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), `Bearer realm="api"`):
			t.Errorf("401 without the challenge: WWW-Authenticate = %q", resp.header.Get("WWW-Authenticate"))
		}
	})
}

// oracleAuthorization reads a header by RFC 9110: optional spaces or tabs
// around the value, the scheme "Bearer" in any case, one or more spaces, and
// a token that is an active key.
func oracleAuthorization(header string) bool {
	v := strings.Trim(header, " \t")
	if len(v) < len("Bearer ") || !strings.EqualFold(v[:len("Bearer")], "Bearer") || v[len("Bearer")] != ' ' {
		return false
	}
	token := strings.TrimLeft(v[len("Bearer"):], " ")
	return token == fuzzWriteKey || token == fuzzReadKey
}
