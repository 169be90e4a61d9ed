package main

// This file is the server's log: where its lines go, and when. Request
// lines may wait a little in a buffer; a warning or an error is written
// the moment it is logged.

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
)

// newLogger returns the server's logger, writing to out in format (text or
// json). A line of level WARN or above is written out at once, with the
// lines gathered before it: see flushAtWarn.
func newLogger(out *logBuffer, format string) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(out, nil)
	if format == "json" {
		h = slog.NewJSONHandler(out, nil)
	}
	return slog.New(flushAtWarn{Handler: h, out: out})
}

// flushAtWarn writes the log buffer out after each line of level WARN or
// above. Those are the lines an operator may be woken for (a panic, a
// request that failed inside the server, a failed save, net/http's own
// complaints), and the ones a crash right after must not take with it.
type flushAtWarn struct {
	slog.Handler
	out *logBuffer
}

func (h flushAtWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if flushErr := h.out.Flush(); err == nil {
			err = flushErr
		}
	}
	return err
}

func (h flushAtWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushAtWarn{Handler: h.Handler.WithAttrs(attrs), out: h.out}
}

func (h flushAtWarn) WithGroup(name string) slog.Handler {
	return flushAtWarn{Handler: h.Handler.WithGroup(name), out: h.out}
}

// logBuffer gathers the log's lines and writes them out together: every
// logFlushEvery, when 32 KiB have gathered, at a warning or an error, and
// when the server stops. Written one by one, each request's line was a
// system call of its own, a cost BENCHMARKS.md measures. The price: a
// request line reaches the log up to logFlushEvery late, and a crash of
// the process (kill -9, a power cut) loses the request lines of that last
// moment, never a warning or an error. A normal stop loses none. Access logs are commonly buffered so (nginx's
// access_log takes buffer= and flush=).
type logBuffer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func newLogBuffer(w io.Writer) *logBuffer {
	return &logBuffer{w: bufio.NewWriterSize(w, 32<<10)}
}

// Write adds p, one whole line from the logger, to the buffer. When it does
// not fit, the lines before it go out first: bufio would fill the buffer
// to the brim and cut the line in two writes.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(p) > b.w.Available() && b.w.Buffered() > 0 {
		if err := b.w.Flush(); err != nil {
			return 0, err
		}
	}
	return b.w.Write(p)
}

// Flush writes out every line gathered so far.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}
