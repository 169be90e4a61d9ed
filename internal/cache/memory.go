package cache

// What caches cost the process, and the two places where the package
// touches the Go runtime's memory settings: the soft memory limit, raised
// for each cache made, and memory given back to the system after an idle
// release (see Cache.ReleaseIfIdle).

import (
	"runtime/debug"
	"sync"
)

// memoryHeadroom is what the rest of the program may use, beside what its
// caches hold, before the soft memory limit makes the collector work
// harder: requests in flight, the HTTP server's buffers, the runtime's
// own books. With the server's caches the limit comes to 48 MiB, as
// measured in BENCHMARKS.md.
const memoryHeadroom = 16 << 20

// reserved is the sum of the MaxBytes of every cache made.
var reserved struct {
	sync.Mutex
	bytes int64
}

// reserveMemory makes room for a cache of n bytes in the runtime's soft
// memory limit: the limit becomes memoryHeadroom plus what every cache made
// so far may hold.
//
// Entries live long, and by default the Go collector lets the heap grow to
// twice what is live before it collects: caches holding 28 MiB would cost
// 56 and more. Under a soft limit it collects sooner instead, which is
// cheap here, since what a cache holds is mostly bytes with no pointers for
// the collector to follow. The limit is soft: a program that needs more
// (many large requests at once) still gets it, and the collector never
// takes more than about half the CPU to keep to it.
//
// An operator who set GOMEMLIMIT ("off" included) has chosen: the runtime
// read it at start, and it is left alone.
func reserveMemory(n int64, getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	reserved.Lock()
	defer reserved.Unlock()
	reserved.bytes += n
	debug.SetMemoryLimit(memoryHeadroom + reserved.bytes)
}
