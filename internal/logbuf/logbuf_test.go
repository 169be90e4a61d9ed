// The tests of the log buffer: lines wait for a flush, a full buffer writes
// whole lines, and a warning goes out at once. The server's logger, built
// on it, is tested in the root package.
package logbuf

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBufferWritesLinesWhenFlushedOrFull(t *testing.T) {
	var out bytes.Buffer
	b := New(&out)
	b.Write([]byte("one\n"))
	b.Write([]byte("two\n"))
	if out.Len() != 0 {
		t.Errorf("before Flush the log has %q, want nothing yet", out.String())
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("one\ntwo\n", out.String()); diff != "" {
		t.Errorf("after Flush (-want +got):\n%s", diff)
	}
	// A burst bigger than the buffer does not wait for the next Flush.
	out.Reset()
	line := strings.Repeat("x", 99) + "\n"
	for range 400 { // 40 KB
		b.Write([]byte(line))
	}
	// The lines that filled the buffer went out, whole; the one that did
	// not fit waits with the rest.
	if want := Size / len(line) * len(line); out.Len() != want {
		t.Errorf("after 40 KB without a Flush the log has %d bytes, want %d: the whole lines that filled the buffer", out.Len(), want)
	}
}

func TestFlushAtWarn(t *testing.T) {
	var out bytes.Buffer
	b := New(&out)
	logger := slog.New(b.FlushAtWarn(slog.NewTextHandler(b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	logger.Info("request")
	if out.Len() != 0 {
		t.Fatalf("an INFO line was written at once: %q", out.String())
	}
	logger.WithGroup("g").With("k", 1).Warn("warning")
	want := "level=INFO msg=request\nlevel=WARN msg=warning g.k=1\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("after a WARN (-want +got):\n%s", diff)
	}
}
