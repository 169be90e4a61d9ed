package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// This file decides who a request comes from and what it may do: the keys
// themselves, the bearer middleware, scopes, and what a key costs to use.

// Scopes. A read key may only GET; a write key may do everything.
const (
	scopeRead  = "read"
	scopeWrite = "write"
)

// A key is "tut_" and 64 hex digits. The prefix makes a leaked key easy to
// recognise (secret scanners, a grep of logs) and impossible to mistake for a
// bare SHA-256 hash, which is also 64 hex digits.
const (
	keyPrefix    = "tut_"
	keyLen       = len(keyPrefix) + 64
	keyShownLen  = 12 // how much of a key the database keeps, to tell keys apart
	keyRandBytes = 32
)

// newKey returns a fresh key from the operating system's secure random source.
func newKey() string {
	b := make([]byte, keyRandBytes)
	rand.Read(b) // never returns an error; it crashes the program rather than return weak bytes
	return keyPrefix + hex.EncodeToString(b)
}

// hashKey is what the database stores for a key. A key holds 256 random bits,
// so a plain SHA-256 is enough: there is nothing to brute-force, and unlike
// a password hash it costs nothing per request.
func hashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// wellFormedKey reports whether s could be a key at all. Anything else is
// refused without asking the database.
func wellFormedKey(s string) bool {
	if len(s) != keyLen || !strings.HasPrefix(s, keyPrefix) {
		return false
	}
	for _, c := range s[len(keyPrefix):] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// issueKey makes a key, records it in store and returns the key itself, the
// only time it exists outside the client's hands.
func issueKey(ctx context.Context, store *Store, name, scope string) (string, APIKey, error) {
	key := newKey()
	rec, err := store.CreateKey(ctx, name, scope, key[:keyShownLen], hashKey(key), time.Now())
	return key, rec, err
}

// Messages of the 401s, as the contract words them.
const (
	msgMissingAuth = "Missing Authorization header"
	msgMalformed   = "Authorization header must be: Bearer <key>"
	msgInvalidKey  = "Invalid or inactive API key"
	msgReadOnly    = "This API key is read-only"
)

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
// The scheme is case-insensitive (RFC 9110, section 11.1); the token is one
// word.
func bearerToken(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", &apiError{http.StatusUnauthorized, msgMissingAuth}
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", &apiError{http.StatusUnauthorized, msgMalformed}
	}
	return token, nil
}

// authenticator checks keys. It is shared by every route that needs one.
type authenticator struct {
	store *Store
	usage *keyUsage
	cache keyCache
}

func newAuthenticator(store *Store, usage *keyUsage) *authenticator {
	return &authenticator{store: store, usage: usage}
}

// requireKey lets a request through to next only with an active key of the
// scope need: any key may read, only a write key may write.
//
// The key is checked on every request, so a key revoked by "tutorials keys
// revoke" in another process is refused on the very next request: see
// keyCache for how that stays cheap.
func (a *authenticator) requireKey(need string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Whatever the answer, it is about this client's key: no shared cache
		// may keep it.
		w.Header().Set("Cache-Control", "no-store")

		token, err := bearerToken(r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			writeError(w, r, err)
			return
		}
		key, err := a.lookup(r.Context(), token)
		if errors.Is(err, ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			writeError(w, r, &apiError{http.StatusUnauthorized, msgInvalidKey})
			return
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		requestInfoFrom(r.Context()).keyID = key.ID
		a.usage.touch(key.ID, time.Now())

		if need == scopeWrite && key.Scope != scopeWrite {
			writeError(w, r, &apiError{http.StatusForbidden, msgReadOnly})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// lookup returns the active key that token is, or ErrNotFound.
func (a *authenticator) lookup(ctx context.Context, token string) (APIKey, error) {
	if !wellFormedKey(token) {
		return APIKey{}, ErrNotFound
	}
	hash := hashKey(token)
	// The version is read before the key, so that a key cached with it is
	// never newer than the version says: a revocation that commits between
	// the two reads changes the version, and the next request reads again.
	version, err := a.store.DataVersion(ctx)
	if err != nil {
		return APIKey{}, err
	}
	if key, ok := a.cache.get(hash, version); ok {
		return key, nil
	}
	key, err := a.store.KeyByHash(ctx, hash)
	if err != nil {
		return APIKey{}, err
	}
	if !key.Active {
		return APIKey{}, ErrNotFound
	}
	a.cache.put(hash, version, key)
	return key, nil
}

// keyCache remembers the active keys found by their hash, as of one
// Store.DataVersion. Any commit to the database, by this process or another,
// changes that version, and the cache then forgets everything: a cached key
// is only ever used while nothing at all has been written since it was
// read. So a revocation takes effect on the very next request, wherever it
// was made, while a server that is only being read answers the key check
// from memory, after one cheap PRAGMA.
//
// It holds only keys that exist and are active, so it is no bigger than the
// api_keys table; wrong keys are never cached.
type keyCache struct {
	mu      sync.Mutex
	version int64
	keys    map[[sha256.Size]byte]APIKey
}

// get returns the key with hash if it was cached at version.
func (c *keyCache) get(hash []byte, version int64) (APIKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return APIKey{}, false
	}
	key, ok := c.keys[[sha256.Size]byte(hash)]
	return key, ok
}

// put caches key, read at version, under hash. A version other than the
// cache's starts the cache afresh.
func (c *keyCache) put(hash []byte, version int64, key APIKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version || c.keys == nil {
		c.version = version
		c.keys = make(map[[sha256.Size]byte]APIKey)
	}
	c.keys[[sha256.Size]byte(hash)] = key
}

// keyUsage remembers when each key was last used, in memory. Writing
// last_used_at on every request would turn every read into a database
// write; instead the server saves these times once a minute and at shutdown.
type keyUsage struct {
	mu   sync.Mutex
	seen map[int64]time.Time
}

func newKeyUsage() *keyUsage {
	return &keyUsage{seen: make(map[int64]time.Time)}
}

// touch records that key id was used at t.
func (u *keyUsage) touch(id int64, t time.Time) {
	u.mu.Lock()
	u.seen[id] = t
	u.mu.Unlock()
}

// save writes the times seen since the last save. If the write fails they
// are kept for the next try, unless a newer use has replaced them meanwhile.
func (u *keyUsage) save(ctx context.Context, store *Store) error {
	u.mu.Lock()
	pending := u.seen
	u.seen = make(map[int64]time.Time)
	u.mu.Unlock()

	err := store.SaveLastUsed(ctx, pending)
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
