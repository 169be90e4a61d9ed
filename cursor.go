package main

// This file is the list's cursor: the position of the last item of a page,
// carried by the Link header's next link (internal/cursor writes and reads
// it). With it the store starts just after the item where the page before
// ended, so a page costs the same at any depth and items created or deleted
// between two pages move no page onto another; page then only numbers it.

import (
	"net/http"
	"strings"
	"time"

	"tutorials/internal/cursor"
)

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
	return cursor.Encode(cursor.Cursor{Sort: sort, Key: key, ID: t.ID})
}

// decodeCursor reads a cursor for a list in sort: errBadCursor when it is
// not one, errOtherCursor when it is one of another sort.
func decodeCursor(s, sort string) (Position, error) {
	c, err := cursor.Decode(s)
	if err != nil {
		return Position{}, errBadCursor
	}
	switch c.Sort {
	case "-published_at", "published_at":
		if _, err := time.Parse(timeFormat, c.Key); err != nil {
			return Position{}, errBadCursor
		}
	case "title", "-title":
		// No title holds NUL (the API refuses it), and PostgreSQL cannot
		// compare text that does.
		if strings.ContainsRune(c.Key, 0) {
			return Position{}, errBadCursor
		}
	default:
		return Position{}, errBadCursor
	}
	if c.Sort != sort {
		return Position{}, errOtherCursor
	}
	return Position{Key: c.Key, ID: c.ID}, nil
}
