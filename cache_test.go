package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ---- Encoding a response once, and keeping it ----

// encodeEnvelope must write exactly what writeEnvelope writes, and the ETag
// that tutorialETag computes (If-Match compares against that one).
func TestEncodeEnvelopeMatchesWriteEnvelope(t *testing.T) {
	tut := Tutorial{TutorialSummary: TutorialSummary{
		Slug: "go", Title: `Go <fast> & "quoted"`, Category: "lang",
		PublishedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
	}, Content: "line\nbreak, ünïcode, \u2028"}
	for _, status := range []int{http.StatusOK, http.StatusCreated} {
		rec := httptest.NewRecorder()
		writeJSON(rec, status, tut)

		body, etag, err := encodeEnvelope(status, tut)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rec.Body.String(), string(body)); diff != "" {
			t.Errorf("status %d: body differs from writeEnvelope's (-want +got):\n%s", status, diff)
		}
		want, err := tutorialETag(tut)
		if err != nil {
			t.Fatal(err)
		}
		if etag != want {
			t.Errorf("status %d: ETag %s, tutorialETag %s", status, etag, want)
		}
	}
}
