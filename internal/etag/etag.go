// Package etag reads and makes the entity tags of conditional requests
// (RFC 9110, sections 8.8.3 and 13.1):
//
//	etag.Of(data)                       // a strong tag of data, quoted
//	header, ok := etag.Header(r, "If-None-Match")
//	etag.NoneMatch(header, tag)         // If-None-Match: 304 if true
//	for tag, weak := range etag.List(header) { … } // If-Match's tags
//
// A tag is always handled with its quotes, as it travels in headers.
package etag

import (
	"crypto/sha256"
	"encoding/hex"
	"iter"
	"net/http"
	"strings"
)

// Of is a strong entity tag of data: 128 bits of its SHA-256, quoted.
func Of(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// Header returns all the lines of header name of r as one list, and
// whether r had any.
func Header(r *http.Request, name string) (string, bool) {
	values := r.Header.Values(name)
	return strings.Join(values, ","), len(values) > 0
}

// NoneMatch reports whether header, the value of If-None-Match, is "*" or
// lists tag. It compares as RFC 9110 says If-None-Match does, weakly: a W/
// prefix is ignored. A malformed list matches as far as it could be read.
func NoneMatch(header, tag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for t := range List(header) {
		if t == tag {
			return true
		}
	}
	return false
}

// List yields each entity tag that header, the value of If-Match or
// If-None-Match, lists, and whether it is weak (W/). A malformed list
// yields the tags before the fault.
func List(header string) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		for header = strings.TrimSpace(header); header != ""; {
			header = strings.TrimLeft(header, " \t,")
			weak := strings.HasPrefix(header, "W/")
			if weak {
				header = header[2:]
			}
			// A tag is a quoted string without escapes: it ends at the
			// next quote, and may itself hold commas.
			if !strings.HasPrefix(header, `"`) {
				return
			}
			end := strings.IndexByte(header[1:], '"')
			if end < 0 {
				return
			}
			tag := header[:end+2]
			header = header[end+2:]
			if !yield(tag, weak) {
				return
			}
		}
	}
}
