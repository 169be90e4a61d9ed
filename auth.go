package main

// This file decides who a request comes from and what it may do: the keys
// themselves, the bearer middleware, scopes and rate limits. When each key
// was last used is kept in memory (internal/lastused) and saved once a
// minute by runServe.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tutorials/internal/cache"
	"tutorials/internal/forwarded"
	"tutorials/internal/lastused"
	"tutorials/internal/ratelimit"
)

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

// issueKey makes a key with the name, scope, limit and creation time of
// rec, records it in store, and returns the key itself, the only time it
// exists outside the client's hands.
func issueKey(ctx context.Context, store Store, rec APIKey) (string, APIKey, error) {
	key := newKey()
	rec.Prefix = key[:keyShownLen]
	rec, err := store.CreateKey(ctx, rec, hashKey(key))
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
// word after one or more spaces. Only spaces and tabs count as padding
// around the value, as in HTTP itself: strings.TrimSpace would also take a
// trailing no-break space or newline for padding and accept a key that was
// not sent as it is.
func bearerToken(header string) (string, error) {
	header = strings.Trim(header, " \t")
	if header == "" {
		return "", &apiError{http.StatusUnauthorized, msgMissingAuth}
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", &apiError{http.StatusUnauthorized, msgMalformed}
	}
	return token, nil
}

// authenticator checks keys. It is shared by every route that needs one.
type authenticator struct {
	store Store
	usage *lastused.Record
	now   func() time.Time // the server's clock: see newServer

	// perKey limits the requests of each key, by its own limit or else
	// limit, the server's -rate and -burst (keyLimit says which);
	// failures limits the failed authentications of each client address,
	// by limit, and is nil when that is off (-rate 0).
	perKey     *ratelimit.Limiter
	limit      KeyLimit
	failures   *ratelimit.Limiter
	trustProxy bool // take the client address from X-Forwarded-For

	keys *keyCache // the active keys found: see newKeyCache
}

func newAuthenticator(cfg config, store Store, keys *keyCache, usage *lastused.Record, now func() time.Time) *authenticator {
	a := &authenticator{store: store, keys: keys, usage: usage, now: now, trustProxy: cfg.trustProxy,
		perKey: ratelimit.New(now), limit: KeyLimit{Rate: cfg.rate, Burst: cfg.burst}}
	if cfg.rate > 0 {
		// A client gets as many wrong keys as a key gets requests: enough for
		// a typo, and far too few to guess a key of 256 random bits.
		a.failures = ratelimit.New(now)
	}
	return a
}

// requireKey lets a request through to next only with an active key of the
// scope need: any key may read, only a write key may write. The key is
// checked on every request (newKeyCache keeps that cheap).
//
// The order matters. A client address that has failed too often is refused
// first, before its key is even read, so that a flood of wrong keys costs
// no database work. Only then is the key checked and its own bucket spent.
func (a *authenticator) requireKey(need string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Whatever the answer, it is about this client's key: no shared cache
		// may keep it.
		w.Header().Set("Cache-Control", "no-store")

		var addr string // the client's, needed only to count its failures
		if a.failures != nil {
			addr = forwarded.ClientAddr(r, a.trustProxy)
			if st := a.failures.Check(addr, ratelimit.Limit(a.limit)); !st.Allowed {
				writeRateLimited(w, r, st)
				return
			}
		}

		token, err := bearerToken(r.Header.Get("Authorization"))
		if err != nil {
			a.failed(addr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			writeError(w, r, err)
			return
		}
		key, err := a.lookup(r.Context(), token)
		if errors.Is(err, ErrNotFound) {
			a.failed(addr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
			writeError(w, r, &apiError{http.StatusUnauthorized, msgInvalidKey})
			return
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		requestInfoFrom(r.Context()).keyID = key.ID
		a.usage.Touch(key.ID, a.now())

		if limit := a.keyLimit(key); limit.Rate > 0 {
			st := a.perKey.Take(strconv.FormatInt(key.ID, 10), ratelimit.Limit(limit))
			st.SetHeaders(w.Header(), "key")
			if !st.Allowed {
				writeRateLimited(w, r, st)
				return
			}
		}

		if need == scopeWrite && key.Scope != scopeWrite {
			writeError(w, r, &apiError{http.StatusForbidden, msgReadOnly})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// keyLimit is the rate limit of key: its own if it has one, else the
// server's. A key's own limit counts even when the server's is off: the
// operator set it for that key. A Rate of 0 is no limit.
func (a *authenticator) keyLimit(key APIKey) KeyLimit {
	if key.Limit != nil {
		return *key.Limit
	}
	return a.limit
}

// failed counts a failed authentication against the client address addr.
func (a *authenticator) failed(addr string) {
	if a.failures != nil {
		a.failures.Take(addr, ratelimit.Limit(a.limit))
	}
}

// lookup returns the active key that token is, or ErrNotFound.
func (a *authenticator) lookup(ctx context.Context, token string) (APIKey, error) {
	if !wellFormedKey(token) {
		return APIKey{}, ErrNotFound
	}
	hash := hashKey(token)
	return a.keys.Get(ctx, [sha256.Size]byte(hash), func(ctx context.Context) (APIKey, error) {
		key, err := a.store.KeyByHash(ctx, hash)
		if err == nil && !key.Active {
			return APIKey{}, ErrNotFound
		}
		return key, err
	})
}

// keyCache holds the active keys found, by the SHA-256 of the key.
type keyCache = cache.Cache[[sha256.Size]byte, APIKey]

// newKeyCache returns the cache of active keys. Like every cache of the
// server it forgets everything when anyone commits anything (see
// internal/cache), so a revocation takes effect on the very next request,
// wherever it was made, while a server that is only read checks keys from
// memory. A wrong key is an error, and errors are never kept. Past its
// bounds a key is read from the database each time: slower, not wrong.
func newKeyCache(versions *cache.Versions, now func() time.Time) *keyCache {
	return cache.New(cache.Options[[sha256.Size]byte, APIKey]{
		Version:    versions.Read, // fresh on every request: see cache.Versions
		MaxEntries: 1024,
		MaxBytes:   256 << 10,
		Size:       func(_ [sha256.Size]byte, k APIKey) int { return len(k.Name) + len(k.Prefix) + len(k.Scope) },
		IdleAfter:  releaseAfter,
		Now:        now,
	})
}

// writeRateLimited answers 429, with the Retry-After st says.
func writeRateLimited(w http.ResponseWriter, r *http.Request, st ratelimit.State) {
	st.SetRetryAfter(w.Header())
	writeError(w, r, &apiError{http.StatusTooManyRequests, "Rate limit exceeded"})
}
