// Package logbuf gathers a log's lines in memory and writes them out
// together, except the lines an operator may be woken for:
//
//	b := logbuf.New(os.Stderr)
//	logger := slog.New(b.FlushAtWarn(slog.NewTextHandler(b, nil)))
//	b.Flush() // now and then, and when the program ends
//
// Lines go out when Flush is called, when 32 KiB have gathered, and at
// once after any line of level WARN or above, with the lines before it. A
// crash (kill -9, a power cut) may lose the request lines of its last
// moment, never a warning or an error. Access logs are commonly buffered
// so (nginx's access_log takes buffer= and flush=); BENCHMARKS.md measures
// what it saves.
package logbuf

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
)

// Size is how much a Buffer gathers before it writes on its own.
const Size = 32 << 10

// Buffer gathers whole log lines for a writer. It is safe for concurrent
// use.
type Buffer struct {
	mu sync.Mutex
	w  *bufio.Writer
}

// New returns a Buffer that writes to w.
func New(w io.Writer) *Buffer {
	return &Buffer{w: bufio.NewWriterSize(w, Size)}
}

// Write adds p, one whole line from a logger, to the buffer. When it does
// not fit, the lines before it go out first: bufio would fill the buffer
// to the brim and cut the line in two writes.
func (b *Buffer) Write(p []byte) (int, error) {
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
func (b *Buffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// FlushAtWarn wraps h, a handler that writes to b, so that b is flushed
// after each record of level WARN or above.
func (b *Buffer) FlushAtWarn(h slog.Handler) slog.Handler {
	return flushAtWarn{Handler: h, b: b}
}

type flushAtWarn struct {
	slog.Handler
	b *Buffer
}

func (h flushAtWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if flushErr := h.b.Flush(); err == nil {
			err = flushErr
		}
	}
	return err
}

func (h flushAtWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushAtWarn{Handler: h.Handler.WithAttrs(attrs), b: h.b}
}

func (h flushAtWarn) WithGroup(name string) slog.Handler {
	return flushAtWarn{Handler: h.Handler.WithGroup(name), b: h.b}
}
