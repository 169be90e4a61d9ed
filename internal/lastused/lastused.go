// Package lastused remembers when each key was last used, in memory, until
// it is saved:
//
//	u := lastused.New()
//	u.Touch(keyID, now)                     // on every request
//	err := u.Save(ctx, store.SaveLastUsed) // once a minute, and at shutdown
//
// Writing last_used_at on every request would turn every read into a
// database write; a save writes every key seen since the last one at once.
package lastused

import (
	"context"
	"sync"
	"time"
)

// Record holds the times seen since the last save. It is safe for
// concurrent use.
type Record struct {
	mu   sync.Mutex
	seen map[int64]time.Time
}

// New returns an empty Record.
func New() *Record {
	return &Record{seen: make(map[int64]time.Time)}
}

// Touch records that key id was used at t.
func (u *Record) Touch(id int64, t time.Time) {
	u.mu.Lock()
	u.seen[id] = t
	u.mu.Unlock()
}

// Save hands the times seen since the last save to save. If it fails they
// are kept for the next try, unless a newer use has replaced them meanwhile.
func (u *Record) Save(ctx context.Context, save func(context.Context, map[int64]time.Time) error) error {
	u.mu.Lock()
	pending := u.seen
	u.seen = make(map[int64]time.Time)
	u.mu.Unlock()

	err := save(ctx, pending)
	if err != nil {
		u.mu.Lock()
		for id, t := range pending {
			if _, newer := u.seen[id]; !newer {
				u.seen[id] = t
			}
		}
		u.mu.Unlock()
	}
	return err
}
