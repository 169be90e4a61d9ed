package main

// This file reads what clients send: a JSON body, read strictly, and its
// fields checked against the rules of the contract (a tutorial, section 3),
// as is the list's query (section 4). Every problem is reported at once.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"tutorials/internal/jsontext"
	"tutorials/internal/validator"
)

// ---- JSON in ----

// maxBodyBytes bounds a request body: far above any tutorial (content is at
// most 200,000 characters), far below what could hurt the server.
const maxBodyBytes = 1 << 20

const msgNotJSON = "Request body must be JSON"

// readObject reads the request body as one JSON object and returns its
// members undecoded, so that each field can be checked on its own and every
// problem reported at once.
func readObject(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, error) {
	if r.ContentLength == 0 {
		return nil, &apiError{http.StatusBadRequest, msgNotJSON}
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		return nil, &apiError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	if r.ContentLength > maxBodyBytes {
		return nil, &apiError{http.StatusRequestEntityTooLarge, "Request body too large"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &apiError{http.StatusRequestEntityTooLarge, "Request body too large"}
		}
		return nil, &apiError{http.StatusBadRequest, "Could not read the request body"}
	}
	if !json.Valid(body) {
		return nil, &apiError{http.StatusBadRequest, msgNotJSON}
	}
	// encoding/json would quietly turn bytes that are not UTF-8, and \u
	// escapes of half a surrogate pair, into U+FFFD: the text stored would
	// not be the text sent. Such a body is not JSON (RFC 8259, 8.1 and 8.2).
	if !utf8.Valid(body) || jsontext.LoneSurrogate(body) {
		return nil, &apiError{http.StatusBadRequest, "Request body must be valid UTF-8"}
	}
	if kind := jsontext.Kind(body); kind != "object" {
		return nil, &apiError{http.StatusBadRequest, "Request body must be a JSON object, not " + kind}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, &apiError{http.StatusBadRequest, msgNotJSON}
	}
	return fields, nil
}

// ---- Tutorials: validation ----

// The rules of section 3 of the contract.
var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

const (
	maxTitle         = 200
	maxSlug          = 100
	maxExcerpt       = 500
	maxContent       = 200_000
	maxCategory      = 50
	maxEstimatedTime = 100_000

	defaultCategory   = "backend"
	defaultDifficulty = "beginner"
)

var difficulties = []string{"beginner", "intermediate", "advanced"}

// writableFields are the fields a client may send, in the order problems
// with them are reported.
var writableFields = []string{"title", "slug", "excerpt", "content", "category",
	"difficulty", "estimated_time", "published_at"}

// readOnlyFields are set by the server; sending one is an error rather than
// silently ignored, so that a client learns its value did not stick.
var readOnlyFields = []string{"id", "created_at", "updated_at"}

// inputMode says what a body is for: a whole tutorial (create, replace) or
// a change (patch).
type inputMode int

const (
	wholeTutorial inputMode = iota
	tutorialChange
)

// parseTutorial checks the members of a request body against the rules of
// the contract and returns the fields sent as a patch. A whole tutorial
// (create, replace) must have a title and a slug. All problems are reported
// at once, joined by "; ": each field's in the order of writableFields, then
// fields that may not be sent.
func parseTutorial(fields map[string]json.RawMessage, mode inputMode) (TutorialPatch, error) {
	v := validator.New()
	required := mode == wholeTutorial
	var p TutorialPatch

	if s, sent := stringField(v, fields, "title", required); sent {
		s = strings.TrimSpace(s)
		v.Check(s != "", "title", "title is required")
		v.Check(utf8.RuneCountInString(s) <= maxTitle, "title", fmt.Sprintf("title must be at most %d characters", maxTitle))
		p.Title = Some(s)
	}
	if s, sent := stringField(v, fields, "slug", required); sent {
		v.Check(strings.TrimSpace(s) != "", "slug", "slug is required")
		v.Check(len(s) <= maxSlug, "slug", fmt.Sprintf("slug must be at most %d characters", maxSlug))
		v.Check(slugPattern.MatchString(s), "slug", "slug must be lowercase letters and digits in words joined by single hyphens, like my-first-tutorial")
		p.Slug = Some(s)
	}
	if s, sent := stringField(v, fields, "excerpt", false); sent {
		v.Check(utf8.RuneCountInString(s) <= maxExcerpt, "excerpt", fmt.Sprintf("excerpt must be at most %d characters", maxExcerpt))
		p.Excerpt = Some(s)
	}
	if s, sent := stringField(v, fields, "content", false); sent {
		v.Check(utf8.RuneCountInString(s) <= maxContent, "content", fmt.Sprintf("content must be at most %d characters", maxContent))
		p.Content = Some(s)
	}
	if s, sent := stringField(v, fields, "category", false); sent {
		s = strings.TrimSpace(s)
		v.Check(s != "" && utf8.RuneCountInString(s) <= maxCategory, "category", fmt.Sprintf("category must be 1 to %d characters", maxCategory))
		p.Category = Some(s)
	}
	if s, sent := stringField(v, fields, "difficulty", false); sent {
		v.Check(slices.Contains(difficulties, s), "difficulty", "difficulty must be one of "+strings.Join(difficulties, ", "))
		p.Difficulty = Some(s)
	}
	if raw, sent := fields["estimated_time"]; sent {
		var minutes *int64 // null: no estimate
		if string(raw) != "null" {
			minutes = new(int64)
			v.Check(json.Unmarshal(raw, minutes) == nil, "estimated_time", "estimated_time must be an integer or null")
			v.Check(*minutes >= 0 && *minutes <= maxEstimatedTime, "estimated_time", fmt.Sprintf("estimated_time must be between 0 and %d minutes", maxEstimatedTime))
		}
		p.EstimatedTime = Some(minutes)
	}
	if s, sent := stringField(v, fields, "published_at", false); sent {
		t, err := time.Parse(time.RFC3339, s)
		v.Check(err == nil, "published_at", "published_at must be an RFC 3339 time, like 2026-11-24T21:17:33Z")
		// time.Parse takes an offset of +24:00 or more, a day or more
		// away; RFC 3339 stops at 23:59.
		_, offset := t.Zone()
		v.Check(max(offset, -offset) < 24*60*60, "published_at", "published_at must have a UTC offset between -23:59 and +23:59")
		// An offset can carry a time of year 0000 or 9999 over the edge of
		// the four-digit years the stored form has room for.
		t = t.UTC().Truncate(time.Second)
		v.Check(t.Year() >= 0 && t.Year() <= 9999, "published_at", "published_at must be between the years 0000 and 9999 in UTC")
		p.PublishedAt = Some(t)
	}

	for _, name := range readOnlyFields {
		_, sent := fields[name]
		v.Check(!sent, name, name+" is read-only")
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names) // map order is random; messages should not be
	for _, name := range names {
		known := slices.Contains(writableFields, name) || slices.Contains(readOnlyFields, name)
		v.Check(known, name, fmt.Sprintf("unknown field %q", name))
	}

	if !v.Valid() {
		return TutorialPatch{}, &apiError{http.StatusBadRequest, v.Message()}
	}
	return p, nil
}

// stringField reads the member name of a body as a string, and whether it
// was sent at all. One that is required and missing, or that is not a
// string, is a problem of v's.
func stringField(v *validator.Validator, fields map[string]json.RawMessage, name string, required bool) (s string, sent bool) {
	raw, sent := fields[name]
	v.Check(sent || !required, name, name+" is required")
	if !sent {
		return "", false
	}
	s, ok := jsonString(raw)
	v.Check(ok, name, name+" must be a string")
	// "\u0000" is valid JSON, but no text a person writes, and PostgreSQL
	// cannot store it: refused on both engines alike.
	v.Check(!strings.ContainsRune(s, 0), name, name+" must not contain the NUL character (\\u0000)")
	return s, true
}

// jsonString decodes raw if it is a JSON string. (json.Unmarshal alone would
// quietly accept null and leave the string empty.)
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// validSlug reports whether a slug from a path could name a tutorial. One
// that could not is a 404 without asking the database.
func validSlug(s string) bool {
	return len(s) <= maxSlug && slugPattern.MatchString(s)
}

// ---- Tutorials: the list query ----

const (
	defaultPerPage = 20
	maxPerPage     = 100
	maxQuery       = 200
)

var sortNames = []string{"-published_at", "published_at", "title", "-title"}

// readQuery parses a query string, refusing what url.ParseQuery would drop
// in silence: a pair with a ";" in it (once a separator, now refused by
// net/url) or a bad "%" escape. "sort=title;DROP" must be a 400, not a list
// in the default order. The message names the parameter when its name can
// be read and is short; it never repeats a value.
func readQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err == nil {
		return q, nil
	}
	msg := `the query string cannot be read: a ";" or a bad "%" escape`
	for _, pair := range strings.Split(raw, "&") {
		name, value, _ := strings.Cut(pair, "=")
		n, nameErr := url.QueryUnescape(name)
		_, valueErr := url.QueryUnescape(value)
		if nameErr == nil && valueErr == nil && !strings.Contains(pair, ";") {
			continue
		}
		if nameErr == nil && !strings.Contains(n, ";") && len(n) <= 50 {
			msg = fmt.Sprintf(`query parameter %q cannot be read: a ";" or a bad "%%" escape`, n)
		}
		break
	}
	return nil, &apiError{http.StatusBadRequest, msg}
}

// parseListQuery reads the list's query parameters. Unknown parameters are
// ignored; a bad value of a known one is a 400 naming it.
func parseListQuery(q url.Values) (ListParams, error) {
	// Sort stays "" unless given: the store's default, which is relevance
	// for a search and newest first otherwise.
	p := ListParams{Page: 1, PerPage: defaultPerPage}
	var problems []string

	if s := q.Get("page"); s != "" {
		n, ok := positiveInt(s)
		if !ok {
			problems = append(problems, "page must be an integer of at least 1")
		}
		p.Page = n
	}
	if s := q.Get("per_page"); s != "" {
		n, ok := positiveInt(s)
		if !ok {
			problems = append(problems, "per_page must be an integer of at least 1")
		}
		p.PerPage = min(n, maxPerPage)
	}
	p.Category = q.Get("category")
	if s := q.Get("difficulty"); s != "" {
		if !slices.Contains(difficulties, s) {
			problems = append(problems, "difficulty must be one of "+strings.Join(difficulties, ", "))
		}
		p.Difficulty = s
	}
	// A q of spaces is no search, as an empty one is; a q with text but no
	// word in it ("***", "-") could only ever find nothing, which a client
	// would take for "no tutorial matches": it is told instead. The length
	// is bounded because the cost of a search grows faster than its number
	// of words; a whole title still fits.
	if s := strings.TrimSpace(q.Get("q")); s != "" {
		switch {
		case utf8.RuneCountInString(s) > maxQuery:
			problems = append(problems, fmt.Sprintf("q must be at most %d characters", maxQuery))
		case len(searchWords(s)) == 0:
			problems = append(problems, "q must contain at least one letter or digit")
		}
		p.Query = s
	}
	if s := q.Get("sort"); s != "" {
		if !slices.Contains(sortNames, s) {
			problems = append(problems, "sort must be one of "+strings.Join(sortNames, ", "))
		}
		p.Sort = s
	}
	// A cursor is judged against the sort, so only once the sort is one.
	if s := q.Get("cursor"); s != "" && (p.Sort == "" || slices.Contains(sortNames, p.Sort)) {
		sort, _ := cursorSort(p)
		var err error
		if p.After, err = decodeCursor(s, sort); err != nil {
			problems = append(problems, err.Error())
		}
	}

	if len(problems) > 0 {
		return p, &apiError{http.StatusBadRequest, strings.Join(problems, "; ")}
	}
	return p, nil
}

// positiveInt parses a decimal integer of at least 1. One too large for an
// int64 is still a valid number, only a very large one: it counts as the
// largest int64 (a page past any end, a per_page of 100).
//
// ParseInt reports ErrRange as soon as the digits overflow, before it looks
// at the rest: "99999999999999999999x" is out of range, not a syntax error.
// So a large number is only taken for one when every character is a digit.
func positiveInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if errors.Is(err, strconv.ErrRange) && s[0] != '-' &&
		!strings.ContainsFunc(strings.TrimPrefix(s, "+"), func(c rune) bool { return c < '0' || c > '9' }) {
		return math.MaxInt64, true
	}
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}
