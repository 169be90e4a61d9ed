package main

// This file is the model: what the handlers may ask of the data, in the
// domain's own types and errors, and the one function that opens a store
// for a -db value. It holds no SQL: each database engine implements Store
// in a room of its own (SQLite: sqlite.go, on internal/sqlitedb).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Errors a store returns for the API to turn into statuses, checked with
// errors.Is. Any other error is unexpected: the API logs it and answers 500.
var (
	ErrNotFound  = errors.New("not found")
	ErrSlugTaken = errors.New("slug already exists")
	// ErrBackupExists is a backup that would overwrite a file the caller
	// did not say it may replace.
	ErrBackupExists = errors.New("backup file already exists")
)

// Store is everything the server and the commands may ask of the data.
// Every method takes the caller's context, so that a client that hangs up
// cancels its query and shutdown can drain.
type Store interface {
	// TutorialBySlug returns the tutorial with that slug, or ErrNotFound.
	TutorialBySlug(ctx context.Context, slug string) (Tutorial, error)
	// ListTutorials returns one page of tutorials and how many match in
	// all, the page and the total from one snapshot.
	ListTutorials(ctx context.Context, p ListParams) ([]TutorialSummary, int64, error)
	// CreateTutorial stores a new tutorial, created at now, and returns it
	// as stored; a slug that is taken is ErrSlugTaken.
	CreateTutorial(ctx context.Context, in TutorialInput, now time.Time) (Tutorial, error)
	// PatchTutorial changes the fields in.Sent names, and only those, if
	// check allows it (nil: always).
	PatchTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check Precondition) (Tutorial, error)
	// ReplaceTutorial overwrites every writable field, if check allows it;
	// a published_at not sent goes back to the time of creation. It never
	// creates: a missing slug is ErrNotFound.
	ReplaceTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check Precondition) (Tutorial, error)
	// DeleteTutorial deletes the tutorial, if check allows it.
	DeleteTutorial(ctx context.Context, slug string, check Precondition) error

	// CreateKey records a new key by its hash and prefix, never the key.
	CreateKey(ctx context.Context, name, scope, prefix string, hash []byte, now time.Time) (APIKey, error)
	// KeyByHash returns the key whose SHA-256 is hash, active or not, or
	// ErrNotFound.
	KeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// APIKeys returns every key, revoked ones included, oldest first.
	APIKeys(ctx context.Context) ([]APIKey, error)
	// HasActiveKey reports whether any key can still be used.
	HasActiveKey(ctx context.Context) (bool, error)
	// RevokeKey deactivates a key, or returns ErrNotFound. Its row stays,
	// so that the listing still explains where a key went.
	RevokeKey(ctx context.Context, id int64) error
	// SaveLastUsed records when each key was last seen. A time never moves
	// backwards, in case another process saw the key later.
	SaveLastUsed(ctx context.Context, used map[int64]time.Time) error

	// Version is a number that changes whenever anyone (this process,
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
	// Close waits for the writes under way and closes the database.
	Close() error
}

// OpenStore opens the store a -db value names, creating the database and
// bringing its schema up to date if need be. Today that is a SQLite file.
func OpenStore(ctx context.Context, db string) (Store, error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		// Not a file name, and a file of that name would be a surprise.
		return nil, fmt.Errorf("-db: PostgreSQL is not supported by this version; give a SQLite file")
	}
	return openSQLite(ctx, db)
}

// ---- Tutorials ----

// Tutorial is one tutorial, as the API returns it.
type Tutorial struct {
	TutorialSummary
	Content string `json:"content"`
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

// TutorialInput is what a client writes: every field it may set, already
// validated. Create and Replace write all of them; Patch writes only those
// named in Sent.
type TutorialInput struct {
	Title         string
	Slug          string
	Excerpt       string
	Content       string
	Category      string
	Difficulty    string
	EstimatedTime *int64     // nil: no estimate
	PublishedAt   *time.Time // nil: the default (the time of creation)

	// Sent holds the JSON names of the fields the client sent.
	Sent map[string]bool
}

// Precondition decides whether a write may go ahead, given the tutorial as
// it is stored at that moment: current is nil when there is none. An error
// it returns stops the write and is returned as it is. It is how If-Match
// reaches the store without the store knowing about HTTP.
type Precondition func(current *Tutorial) error

// ListParams selects and orders a page of tutorials. The API has already
// checked every value.
type ListParams struct {
	Page       int64  // from 1
	PerPage    int64  // 1 to 100
	Category   string // "" for any
	Difficulty string // "" for any
	Query      string // words to search for, as the user typed them; "" for no search
	Sort       string // one of sortNames, or "" for the default order
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
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
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
