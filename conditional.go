package main

// This file holds conditional requests: the ETags of the answers, and
// If-None-Match (a 304 when nothing changed) and If-Match (a 412 when
// somebody else did) read from a request.
//
// A tutorial's ETag is its Revision, "id-version". The version moves with
// every change, whoever makes it, even twice within a second, and ids are
// never reused: so If-Match becomes a condition of the write itself (see
// Precondition), and a GET needs no hash. The list has no version of its
// own: its ETag is a hash of its encoded data.

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"tutorials/internal/etag"
)

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
func encodeTutorial(status int, t Tutorial) (body []byte, tag string, err error) {
	body, _, err = envelopeBytes(status, t)
	if err != nil {
		return nil, "", err
	}
	return body, tutorialETag(t), nil
}

// encodeEnvelope encodes data in the envelope with status, and returns it
// with a hash of the data as its ETag, for an answer that has no version of
// its own (a page of the list).
func encodeEnvelope(status int, data any) (body []byte, tag string, err error) {
	body, encoded, err := envelopeBytes(status, data)
	if err != nil {
		return nil, "", err
	}
	return body, etag.Of(encoded), nil
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
func writeEncoded(w http.ResponseWriter, r *http.Request, status int, body []byte, tag string) {
	h := w.Header()
	h.Set("ETag", tag)
	if status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if header, ok := etag.Header(r, "If-None-Match"); ok && etag.NoneMatch(header, tag) {
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
	header, ok := etag.Header(r, "If-Match")
	if !ok {
		return nil
	}
	if strings.TrimSpace(header) == "*" {
		return &Precondition{AnyRevision: true}
	}
	check := &Precondition{}
	for tag, weak := range etag.List(header) {
		if rev, ok := etagRevision(tag); ok && !weak {
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
