package main

// This file holds conditional requests: the ETags of the answers, and
// If-None-Match and If-Match read from a request.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"iter"
	"net/http"
	"strconv"
	"strings"
)

// ---- Conditional requests ----

// An ETag names one exact representation of a resource: a client that
// keeps it can ask "has it changed?" (If-None-Match on a GET, answered 304
// when it has not) or "write only if nobody changed it since I read it"
// (If-Match on a write, answered 412 when somebody did).
//
// A tutorial's ETag is its Revision, "id-version". The version moves with
// every change, whoever makes it (a person in the sqlite3 shell included),
// even twice within a second, which updated_at, in whole seconds, could not
// tell apart. Ids are never reused, so a tutorial deleted and made again
// under the same slug never takes up its predecessor's tags. So If-Match
// becomes a condition of the write itself (see Precondition), and a GET
// needs no hash. The list has no version of its own: its ETag is a hash of
// its encoded data.

// etagOf is the strong ETag of encoded data: 128 bits of its SHA-256, quoted
// as RFC 9110 wants.
func etagOf(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// tutorialETag is the ETag of t, as a GET of it answers.
func tutorialETag(t Tutorial) string {
	return revisionETag(t.Revision())
}

// revisionETag is the ETag of a tutorial at rev.
func revisionETag(rev Revision) string {
	return `"` + strconv.FormatInt(rev.ID, 10) + "-" + strconv.FormatInt(rev.Version, 10) + `"`
}

// etagRevision is the revision an ETag made by revisionETag names. Any
// other tag names none: If-Match compares tags as strings, so only the
// exact form counts ("+7-2" and "07-2" are other tags).
func etagRevision(etag string) (Revision, bool) {
	var rev Revision
	_, err := fmt.Sscanf(etag, `"%d-%d"`, &rev.ID, &rev.Version)
	return rev, err == nil && revisionETag(rev) == etag
}

// writeTutorial writes t in the envelope with its ETag. A GET or HEAD
// whose If-None-Match already names that ETag gets 304 Not Modified instead:
// no body, the ETag kept.
func writeTutorial(w http.ResponseWriter, r *http.Request, status int, t Tutorial) {
	body, etag, err := encodeTutorial(status, t)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeEncoded(w, r, status, body, etag)
}

// encodeTutorial encodes t in the envelope with status, and returns it with
// t's ETag.
func encodeTutorial(status int, t Tutorial) (body []byte, etag string, err error) {
	body, _, err = envelopeBytes(status, t)
	if err != nil {
		return nil, "", err
	}
	return body, tutorialETag(t), nil
}

// encodeEnvelope encodes data in the envelope with status, and returns it
// with a hash of the data as its ETag, for an answer that has no version of
// its own (a page of the list).
func encodeEnvelope(status int, data any) (body []byte, etag string, err error) {
	body, encoded, err := envelopeBytes(status, data)
	if err != nil {
		return nil, "", err
	}
	return body, etagOf(encoded), nil
}

// envelopeBytes encodes data in the envelope with status, the same bytes
// writeEnvelope writes, and returns them with the part of them that is the
// data.
//
// It encodes data once: encoding it for the ETag and then again inside the
// envelope (as json.RawMessage, which encoding/json scans and copies once
// more to check it) showed in the time of every GET.
func envelopeBytes(status int, data any) (body, encoded []byte, err error) {
	const head = `{"data":`
	var buf bytes.Buffer
	buf.WriteString(head)
	if err := appendJSON(&buf, data); err != nil {
		return nil, nil, err
	}
	end := buf.Len()
	buf.WriteString(`,"error":null,"status":`)
	buf.WriteString(strconv.Itoa(status))
	buf.WriteString("}\n")
	body = buf.Bytes()
	return body, body[len(head):end], nil
}

// writeEncoded writes body, made by encodeEnvelope or encodeTutorial, with
// its ETag, or 304 Not Modified as writeTutorial says.
func writeEncoded(w http.ResponseWriter, r *http.Request, status int, body []byte, etag string) {
	h := w.Header()
	h.Set("ETag", etag)
	if status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if header, ok := conditionHeader(r, "If-None-Match"); ok && etagMatches(header, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// ifMatch is the store Precondition of r's If-Match header, or nil when it
// has none. Per RFC 9110 section 13.1.1 the write goes ahead only if the
// tutorial exists and the header is "*" or lists its current ETag under the
// strong comparison (a weak W/ tag never matches). A tutorial that does not
// exist matches nothing, so If-Match on it is 412, not 404: the client's
// copy is stale either way. A header that cannot be parsed, or lists no tag
// of ours, matches nothing too: a write the client meant to make
// conditional is never made blindly.
func ifMatch(r *http.Request) *Precondition {
	header, ok := conditionHeader(r, "If-Match")
	if !ok {
		return nil
	}
	if strings.TrimSpace(header) == "*" {
		return &Precondition{AnyRevision: true}
	}
	check := &Precondition{}
	for etag, weak := range entityTags(header) {
		if rev, ok := etagRevision(etag); ok && !weak {
			check.Revisions = append(check.Revisions, rev)
		}
	}
	return check
}

// tutorialMissing is the answer to a write to a tutorial that cannot exist:
// 404, or 412 when the write was conditional on If-Match, as the store
// answers when it finds no row.
func tutorialMissing(r *http.Request) error {
	if ifMatch(r) != nil {
		return ErrEditConflict
	}
	return ErrNotFound
}

// conditionHeader returns all the lines of header name as one list, and
// whether the request had any.
func conditionHeader(r *http.Request, name string) (string, bool) {
	values := r.Header.Values(name)
	return strings.Join(values, ","), len(values) > 0
}

// etagMatches reports whether header, the value of If-None-Match, is "*" or
// lists etag. It compares as RFC 9110 (section 8.8.3.2) says If-None-Match
// does, weakly: a W/ prefix is ignored. (If-Match compares strongly: see
// ifMatch.) A malformed list matches as far as it could be read.
func etagMatches(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for tag := range entityTags(header) {
		if tag == etag {
			return true
		}
	}
	return false
}

// entityTags yields each entity tag that header, the value of If-Match or
// If-None-Match, lists, quotes included, and whether it is weak (W/). A
// malformed list yields the tags before the fault.
func entityTags(header string) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		for header = strings.TrimSpace(header); header != ""; {
			header = strings.TrimLeft(header, " \t,")
			weak := strings.HasPrefix(header, "W/")
			if weak {
				header = header[2:]
			}
			// An entity tag is a quoted string without escapes: it ends at
			// the next quote, and may itself hold commas.
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
