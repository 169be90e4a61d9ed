package main

// This file is the model: what the handlers may ask of the data, in the
// domain's own types and errors, and the one function that opens a store
// for a -db value. It holds no SQL: each database engine implements Store
// in a room of its own (SQLite: sqlite.go, on internal/sqlitedb).

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"
)

// Errors a store returns for the API to turn into statuses, checked with
// errors.Is. Any other error is unexpected: the API logs it and answers 500.
var (
	ErrNotFound  = errors.New("not found")
	ErrSlugTaken = errors.New("slug already exists")
	// ErrEditConflict is a write whose Precondition did not hold: the
	// tutorial changed, or went, since the client read it.
	ErrEditConflict = errors.New("edit conflict")
	// ErrAlreadyRevoked is a key revoked a second time: no harm done, but
	// the person revoking it should know it was not in use.
	ErrAlreadyRevoked = errors.New("key already revoked")
	// ErrBackupExists is a backup that would overwrite a file the caller
	// did not say it may replace.
	ErrBackupExists = errors.New("backup file already exists")
	// ErrQueryTimeout is a list or a search stopped by its deadline: no
	// query runs unbounded, so that one request cannot hold a connection
	// that others wait for.
	ErrQueryTimeout = errors.New("query took too long")
	// ErrUnavailable is a database that cannot be reached: refused, cut
	// off, restarting. It says nothing of the request, which may succeed
	// once the database is back.
	ErrUnavailable = errors.New("database unavailable")
	// ErrNotEmpty is a copy into a database that already holds data.
	ErrNotEmpty = errors.New("database is not empty")
)

// Store is everything the server and the commands may ask of the data.
// Every method takes the caller's context, so that a client that hangs up
// cancels its query and shutdown can drain.
type Store interface {
	// TutorialBySlug returns the tutorial with that slug, or ErrNotFound.
	TutorialBySlug(ctx context.Context, slug string) (Tutorial, error)
	// ListTutorials returns one page of tutorials, with how many match
	// and whether more follow, all from one snapshot, at a cost that does
	// not grow with the library: see TutorialList. A page that takes too
	// long all the same is ErrQueryTimeout.
	ListTutorials(ctx context.Context, p ListParams) (TutorialList, error)
	// CreateTutorial stores a new tutorial, created at now, and returns it
	// as stored; a slug that is taken is ErrSlugTaken.
	CreateTutorial(ctx context.Context, in TutorialInput, now time.Time) (Tutorial, error)
	// PatchTutorial changes the fields p sets, and only those, if check
	// holds (nil: always).
	PatchTutorial(ctx context.Context, slug string, p TutorialPatch, now time.Time, check *Precondition) (Tutorial, error)
	// ReplaceTutorial overwrites every writable field, if check holds; a
	// published_at not sent goes back to the time of creation. It never
	// creates: a missing slug is ErrNotFound.
	ReplaceTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check *Precondition) (Tutorial, error)
	// DeleteTutorial deletes the tutorial, if check holds.
	DeleteTutorial(ctx context.Context, slug string, check *Precondition) error

	// CreateKey records a new key, k, by its hash, never the key itself,
	// and returns the record with its id.
	CreateKey(ctx context.Context, k APIKey, hash []byte) (APIKey, error)
	// KeyByHash returns the key whose SHA-256 is hash, active or not, or
	// ErrNotFound.
	KeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// APIKeys returns every key, revoked ones included, oldest first.
	APIKeys(ctx context.Context) ([]APIKey, error)
	// HasActiveKey reports whether any key can still be used.
	HasActiveKey(ctx context.Context) (bool, error)
	// RevokeKey deactivates a key, or returns ErrNotFound, or
	// ErrAlreadyRevoked. Its row stays, so that the listing still explains
	// where a key went.
	RevokeKey(ctx context.Context, id int64) error
	// SetKeyLimit gives a key its own rate limit, or, with nil, has it
	// follow the server's again; ErrNotFound for no such key.
	SetKeyLimit(ctx context.Context, id int64, limit *KeyLimit) error
	// SaveLastUsed records when each key was last seen. A time never moves
	// backwards, in case another process saw the key later.
	SaveLastUsed(ctx context.Context, used map[int64]time.Time) error

	// Version is a number that grows whenever anyone (this process,
	// another, a person with a database shell) has committed a change
	// since it was last asked, and stays the same otherwise. Something read
	// from the store after Version may be kept for as long as Version
	// stays the same: see internal/cache.
	Version(ctx context.Context) (int64, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// WriteFailure returns why writes fail, when the last one failed
	// because the database cannot be written (a full disk), or nil.
	WriteFailure() error
	// Backup writes a consistent copy of the database to the file dest,
	// while others read and write; an existing dest is ErrBackupExists
	// unless replace is set.
	Backup(ctx context.Context, dest string, replace bool) error
	// Dump gives everything in the store to l, read from one snapshot:
	// tutorials with their ids, timestamps and versions, keys with their
	// hashes, and where ids go on from. It is how copy and a backup from
	// one engine to another read a store.
	Dump(ctx context.Context, l Loader) error
	// Load runs fill with a Loader that writes into this store, in one
	// transaction that commits only if fill returns nil. A store that
	// holds any tutorial or key is ErrNotEmpty, and nothing is written.
	Load(ctx context.Context, fill func(Loader) error) error
	// Close waits for the writes under way and closes the database.
	Close() error
}

// Loader takes in a store's contents, as Dump gives them.
type Loader interface {
	Tutorial(ctx context.Context, t Tutorial) error
	Key(ctx context.Context, k APIKey, hash []byte) error
	// LastIDs are the largest ids the source ever gave, deleted ones
	// included, so that the target never gives them again.
	LastIDs(ctx context.Context, tutorial, key int64) error
}

// OpenStore opens the store a -db value names, bringing its schema up to
// date if need be: a PostgreSQL database for a postgres:// or
// postgresql:// URL, else a SQLite file, created if missing.
func OpenStore(ctx context.Context, db string) (Store, error) {
	if isPostgresURL(db) {
		return openPostgres(ctx, db)
	}
	return openSQLite(ctx, db)
}

// isPostgresURL reports whether a -db value names a PostgreSQL database.
func isPostgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openExisting is OpenStore for a database that must exist already: the
// commands that read one (backup, copy) would otherwise create a missing
// SQLite file, and a mistyped -db would give a copy of nothing that looks
// like a success.
func openExisting(ctx context.Context, db string) (Store, error) {
	if !isPostgresURL(db) {
		if _, err := os.Stat(db); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
	}
	return OpenStore(ctx, db)
}

// displayDB is a -db value as logs and messages show it: a URL without its
// password.
func displayDB(db string) string {
	if !isPostgresURL(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "(a PostgreSQL URL that does not parse)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// ---- Tutorials ----

// Tutorial is one tutorial, as the API returns it, and the version it is at.
type Tutorial struct {
	TutorialSummary
	Content string `json:"content"`
	// Version moves with every change to the tutorial. It is not a field
	// of the resource: see Revision.
	Version int64 `json:"-"`
}

// Revision names one state of one tutorial: the tutorial by its id, which
// is never reused, and its version, which moves with every change. The API
// makes a tutorial's ETag of it.
type Revision struct {
	ID      int64
	Version int64
}

// Revision is the state t is in.
func (t Tutorial) Revision() Revision {
	return Revision{ID: t.ID, Version: t.Version}
}

// TutorialSummary is a tutorial without its content, as the list returns it:
// a page of twenty should not carry twenty articles.
type TutorialSummary struct {
	ID            int64     `json:"id"`
	Title         string    `json:"title"`
	Slug          string    `json:"slug"`
	Excerpt       string    `json:"excerpt"`
	Category      string    `json:"category"`
	Difficulty    string    `json:"difficulty"`
	EstimatedTime *int64    `json:"estimated_time"`
	PublishedAt   time.Time `json:"published_at"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// TutorialInput is a whole tutorial as a client writes it, already
// validated: Create and Replace write every field.
type TutorialInput struct {
	Title         string
	Slug          string
	Excerpt       string
	Content       string
	Category      string
	Difficulty    string
	EstimatedTime *int64     // nil: no estimate
	PublishedAt   *time.Time // nil: the default (the time of creation)
}

// TutorialPatch is a change to a tutorial, already validated: the fields
// that are set change, the others stay as they are.
type TutorialPatch struct {
	Title         Optional[string]
	Slug          Optional[string]
	Excerpt       Optional[string]
	Content       Optional[string]
	Category      Optional[string]
	Difficulty    Optional[string]
	EstimatedTime Optional[*int64] // set to nil: no estimate any more
	PublishedAt   Optional[time.Time]
}

// Optional is a field of a TutorialPatch: a new value when Set, no change
// otherwise. A pointer alone could not tell "set estimated_time to null"
// from "leave it alone".
type Optional[T any] struct {
	Value T
	Set   bool
}

// Some is an Optional that sets v.
func Some[T any](v T) Optional[T] {
	return Optional[T]{Value: v, Set: true}
}

// Or returns the value o sets, or def when it sets none.
func (o Optional[T]) Or(def T) T {
	if o.Set {
		return o.Value
	}
	return def
}

// Precondition is what a write expects of the tutorial, for If-Match: that
// it exists and is at one of Revisions, or at any revision when AnyRevision
// is set. Otherwise the write changes nothing and is ErrEditConflict. The
// store checks it in the write itself (optimistic locking), so of two
// clients that read the same revision, only the first to write succeeds.
type Precondition struct {
	AnyRevision bool
	Revisions   []Revision
}

// ListParams selects and orders a page of tutorials. The API has already
// checked every value. It is a comparable value, so that a page may be
// kept under its parameters.
type ListParams struct {
	Page       int64  // from 1
	PerPage    int64  // 1 to 100
	Category   string // "" for any
	Difficulty string // "" for any
	Query      string // words to search for, as the user typed them; "" for no search
	Sort       string // one of sortNames, or "" for the default order
	// After, when set, is where the page starts: just after that item in
	// the order of Sort. Page then only numbers the page; it does not
	// move it. A store never needs to skip rows to find such a page.
	After Position
}

// Position is the place of one item in a sorted list: its sort key (the
// published_at in timeFormat, or the title) and its id, which breaks ties.
// The zero Position is the start of the list.
type Position struct {
	Key string
	ID  int64
}

// IsZero reports whether p is the start of the list.
func (p Position) IsZero() bool { return p == Position{} }

// TutorialList is a page of tutorials and what the API says about it.
//
// Total is exact when TotalExact is set. Otherwise it is a lower bound: a
// search counts its matches only up to a bound, and lists and ranks only
// that many of them, the newest (see sqlite_list.go), so that its
// cost does not grow with the library.
type TutorialList struct {
	Tutorials  []TutorialSummary
	Total      int64
	TotalExact bool
	// More reports that an item follows the last of this page, so that
	// the next page, following it, is not empty.
	More bool
}

// timeFormat is how every timestamp is stored and returned: RFC 3339 in UTC
// with whole seconds, "2026-11-24T21:17:33Z".
const timeFormat = "2006-01-02T15:04:05Z"

// formatTime renders t the one way the database and the API know.
func formatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format(timeFormat)
}

// ---- API keys ----

// APIKey is a key's record. The key itself is not in it: only its hash is
// stored, and the hash stays inside the store.
type APIKey struct {
	ID         int64
	Name       string
	Prefix     string // the key's first characters, to tell keys apart
	Scope      string // scopeRead or scopeWrite
	Active     bool
	Limit      *KeyLimit // the key's own rate limit; nil: the server's -rate and -burst
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
}

// KeyLimit is a key's own rate limit, which replaces the server's -rate and
// -burst for that key: Rate requests a second, in bursts of up to Burst. A
// Rate of 0 means no limit at all for the key.
type KeyLimit struct {
	Rate  float64
	Burst int
}

// searchWords splits text on spaces into the words worth searching for:
// those with at least one letter or digit. The rest ("-", "*", an emoji)
// are all separators to a full-text index and could only ever match
// nothing. Invalid UTF-8 and control characters become spaces.
func searchWords(text string) []string {
	text = strings.ToValidUTF8(text, " ")
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	var words []string
	for _, w := range strings.Fields(text) {
		if strings.ContainsFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) {
			words = append(words, w)
		}
	}
	return words
}
