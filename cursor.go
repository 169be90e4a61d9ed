package main

// This file is the list's cursor: the position of the last item of a page,
// as the opaque value of the cursor parameter that the Link header's next
// link carries.
//
// Following next by page number alone made the store skip every row before
// the page, 800,000 of them at page 40,000 of a million tutorials. With the
// cursor, the store starts just after the item where the page before ended,
// and a page costs the same at any depth; page then only numbers it. Items
// created or deleted between two pages move no page onto another, so
// following next still visits every item once, in order.
//
// A cursor is base64url (no padding) of the JSON array [sort, key, id]: the
// sort it belongs to, the item's sort key (its published_at, or its title)
// and its id. Opaque to clients, which only ever copy it from a link, but
// plain to a person debugging one. Anyone may write one by hand: it is only
// a place in the list, and the store takes it as such.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// maxCursor bounds a cursor's length: a title of 200 characters of four
// bytes each, its JSON and its base64 fit in it.
const maxCursor = 2048

// Messages of a cursor that cannot be used.
var (
	errBadCursor   = &apiError{http.StatusBadRequest, "cursor is not valid"}
	errOtherCursor = &apiError{http.StatusBadRequest, "cursor belongs to another sort"}
)

// cursorSort is the sort a list of p is in, as its cursors name it: the
// default order is newest first, and relevance, the default of a search,
// has none, since it pages within the window of the search by number.
func cursorSort(p ListParams) (string, bool) {
	switch {
	case p.Sort != "":
		return p.Sort, true
	case p.Query != "":
		return "", false
	default:
		return "-published_at", true
	}
}

// encodeCursor is the cursor of the position just after t in sort.
func encodeCursor(sort string, t TutorialSummary) string {
	key := formatTime(t.PublishedAt)
	if sort == "title" || sort == "-title" {
		key = t.Title
	}
	b, _ := json.Marshal([]any{sort, key, t.ID}) // strings and an integer cannot fail to encode
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor for a list in sort: errBadCursor when it is
// not one, errOtherCursor when it is one of another sort.
func decodeCursor(s, sort string) (Position, error) {
	if len(s) > maxCursor {
		return Position{}, errBadCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !utf8.Valid(b) {
		return Position{}, errBadCursor
	}
	var fields []json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || len(fields) != 3 {
		return Position{}, errBadCursor
	}
	var cursorSort, key string
	var id int64
	if json.Unmarshal(fields[0], &cursorSort) != nil || json.Unmarshal(fields[1], &key) != nil ||
		json.Unmarshal(fields[2], &id) != nil || id < 1 {
		return Position{}, errBadCursor
	}
	switch cursorSort {
	case "-published_at", "published_at":
		if _, err := time.Parse(timeFormat, key); err != nil {
			return Position{}, errBadCursor
		}
	case "title", "-title":
		// No title holds NUL (the API refuses it), and PostgreSQL cannot
		// compare text that does.
		if strings.ContainsRune(key, 0) {
			return Position{}, errBadCursor
		}
	default:
		return Position{}, errBadCursor
	}
	if cursorSort != sort {
		return Position{}, errOtherCursor
	}
	return Position{Key: key, ID: id}, nil
}
