// Package muxanswers lets a server answer in its own form where an
// http.ServeMux answers on its own: an unknown path (404), a known path
// with a method it has no route for (405, with the Allow header the mux
// sets), and a path it would redirect to its clean form (/api//v1/ to
// /api/v1/), which to an API client names nothing: 404.
//
//	h := muxanswers.Rewrite(mux, func(w http.ResponseWriter, r *http.Request, status int) {
//		// write the 404 or the 405 in the server's own form
//	})
//
// The mux looks each route up once, as it would alone; what it answers
// itself is rewritten on its way out. Its answers are told from a
// handler's by their Content-Type: the mux writes its errors in plain text
// (http.Error) and its redirects with a Location (http.Redirect), so a
// handler behind Rewrite must answer its own errors in JSON.
package muxanswers

import (
	"net/http"
	"slices"
	"strings"
)

// Rewrite serves mux, answering with answer where the mux would answer
// itself, with status 404 or 405. The Allow header of a 405 is set, its
// methods in the order GET, HEAD, POST, PUT, PATCH, DELETE (the mux sorts
// them by name).
func Rewrite(mux http.Handler, answer func(w http.ResponseWriter, r *http.Request, status int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&writer{ResponseWriter: w, r: r, answer: answer}, r)
	})
}

// writer rewrites the answers the mux writes itself.
type writer struct {
	http.ResponseWriter
	r         *http.Request
	answer    func(w http.ResponseWriter, r *http.Request, status int)
	rewritten bool // the mux's answer was replaced: what it writes next goes nowhere
}

func (w *writer) WriteHeader(status int) {
	if w.rewritten {
		return
	}
	h := w.Header()
	redirect := 300 <= status && status < 400 && h.Get("Location") != ""
	if (status < 400 && !redirect) || strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.rewritten = true
	h.Del("Location")
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", inMethodOrder(h.Get("Allow")))
	} else {
		status = http.StatusNotFound
	}
	w.answer(w.ResponseWriter, w.r, status)
}

func (w *writer) Write(b []byte) (int, error) {
	if w.rewritten {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// inMethodOrder is allow, a list of methods, in methodOrder; methods it
// does not name go last.
func inMethodOrder(allow string) string {
	methods := strings.Split(allow, ", ")
	rank := func(m string) int {
		if i := slices.Index(methodOrder, m); i >= 0 {
			return i
		}
		return len(methodOrder)
	}
	slices.SortStableFunc(methods, func(a, b string) int { return rank(a) - rank(b) })
	return strings.Join(methods, ", ")
}
