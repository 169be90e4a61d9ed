// Package cache keeps what was read from a database in memory, for as long
// as the database has not changed since it was read. The server has three,
// all this one type: the active keys, and the answers to GET of the list
// and of a tutorial.
//
//	c := cache.New(cache.Options[K, V]{
//		Version:    store.Version, // a number that moves whenever anyone commits
//		MaxEntries: 256,
//		MaxBytes:   4 << 20,
//		Size:       func(k K, v V) int { ... }, // the bytes k and v point to
//		IdleAfter:  2 * time.Second,
//		Now:        now,
//	})
//	v, err := c.Get(ctx, key, load) // from memory, or from load and then kept
//	c.ReleaseIfIdle()               // call now and then: lets go after a quiet spell
//	c.Clear()                       // lets go now
//	c.Len(), c.Bytes()              // what it holds
//
// Version may be a Versions' Read or Latest, so that the caches a request
// meets share one reading of the database: see Versions.
//
// The one rule that makes it safe, kept by Get and nowhere else: the
// version is read before the data, and the data is kept under that version.
// An entry is served only to a Get that read the same version, so an answer
// from memory is one the database gave since its last commit, by this
// process or any other. A commit between the reading of the version and
// load makes an entry newer than its version says, never older; the next
// Get reads the new version and loads again.
//
// MaxBytes bounds every byte an entry holds: the key and the value
// themselves and what Size says they point to. A full cache keeps what it
// has and takes nothing more until the version moves. Evicting instead
// would be worse for a client that reads every page in turn (a backup
// script, a crawler): with more pages than room, each entry would be gone
// before its turn came again.
//
// Two effects reach past the cache, both for the memory it holds: New
// raises the Go runtime's soft memory limit by MaxBytes (see
// reserveMemory), and a release when idle gives memory back to the system
// (see ReleaseIfIdle).
package cache

import (
	"context"
	"os"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"
)

// Options are a cache's source of versions, its bounds and its idle time.
// Version, MaxEntries and MaxBytes are required.
type Options[K comparable, V any] struct {
	// Version returns a number that changes whenever the data may have.
	Version func(context.Context) (int64, error)

	// MaxEntries and MaxBytes bound what the cache holds.
	MaxEntries, MaxBytes int
	// Size is the number of bytes k and v point to: the contents of their
	// strings and slices. The cache adds the size of k and v themselves.
	// Nil counts nothing more.
	Size func(k K, v V) int

	// IdleAfter is how long a cache must go without a Get before
	// ReleaseIfIdle lets go of it; 0 for never. Now is the clock it is
	// measured on, time.Now if nil.
	IdleAfter time.Duration
	Now       func() time.Time
}

// Cache is a versioned cache of values V by keys K. It is safe for
// concurrent use.
type Cache[K comparable, V any] struct {
	opts      Options[K, V]
	entrySize int // of a key and a value themselves

	mu      sync.Mutex
	version int64
	entries map[K]V // nil when empty
	bytes   int     // held by the entries, by MaxBytes's count
	lastGet time.Time
}

// New returns an empty cache. It makes room for the cache's MaxBytes in
// the runtime's soft memory limit: see reserveMemory.
func New[K comparable, V any](opts Options[K, V]) *Cache[K, V] {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var k K
	var v V
	reserveMemory(int64(opts.MaxBytes), os.Getenv)
	return &Cache[K, V]{opts: opts, entrySize: int(unsafe.Sizeof(k) + unsafe.Sizeof(v))}
}

// Get returns the value kept under key, if it was read at the version
// that the database has now. Otherwise it calls load, and keeps what load
// returns if there is room. An error, from the version or from load, is
// returned as it is and nothing is kept: a value that is not there (a
// wrong key, a missing tutorial) takes no room.
func (c *Cache[K, V]) Get(ctx context.Context, key K, load func(context.Context) (V, error)) (V, error) {
	version, err := c.opts.Version(ctx)
	if err != nil {
		var zero V
		return zero, err
	}
	now := c.opts.Now()
	c.mu.Lock()
	c.lastGet = now
	v, ok := c.entries[key]
	ok = ok && c.version == version
	c.mu.Unlock()
	if ok {
		return v, nil
	}

	v, err = load(ctx)
	if err != nil {
		return v, err
	}
	c.put(key, version, v)
	return v, nil
}

// put keeps v, read at version, under key, if there is room. A version
// other than the cache's starts it afresh: whatever it held is stale, or
// (after a slow load) v is, and the next Get sorts that out.
func (c *Cache[K, V]) put(key K, version int64, v V) {
	size := c.entrySize
	if c.opts.Size != nil {
		size += c.opts.Size(key, v)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || c.entries == nil {
		c.version, c.entries, c.bytes = version, make(map[K]V), 0
	}
	if _, ok := c.entries[key]; ok || len(c.entries) >= c.opts.MaxEntries || c.bytes+size > c.opts.MaxBytes {
		return
	}
	c.entries[key] = v
	c.bytes += size
}

// Clear lets go of every entry.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries, c.bytes = nil, 0
}

// ReleaseIfIdle lets go of every entry if no Get has come for IdleAfter,
// and reports whether it did. Call it now and then (every second, say);
// it costs nothing when there is nothing to do.
//
// A release also gives memory back to the system (debug.FreeOSMemory).
// Letting go of entries frees them for the Go heap, not for the system,
// and so does the end of the busy spell that a release follows: the heap
// it grew to is garbage now, but a program that does nothing runs no
// collection for up to two minutes, and returns the freed pages slowly
// after that. A forced collection once per quiet spell, when nothing else
// is running, costs nothing anyone waits for.
func (c *Cache[K, V]) ReleaseIfIdle() bool {
	if c.opts.IdleAfter <= 0 {
		return false
	}
	now := c.opts.Now()
	c.mu.Lock()
	idle := c.entries != nil && now.Sub(c.lastGet) >= c.opts.IdleAfter
	if idle {
		c.entries, c.bytes = nil, 0
	}
	c.mu.Unlock()
	if idle {
		debug.FreeOSMemory()
	}
	return idle
}

// Len is the number of entries the cache holds.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Bytes is what the entries hold, counted as MaxBytes counts it.
func (c *Cache[K, V]) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
