package main

// The bench's databases: made the way a user would make one, then filled
// straight through SQL with tutorials written in a small vocabulary.

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"time"
)

// newDatabase creates a database the way a user would (the server's own
// "keys create", which also runs the migrations), then fills it with rows
// tutorials straight through SQL, in one transaction.
func newDatabase(bin, path string, rows int) (key string, took time.Duration, err error) {
	if key, err = newKey(bin, path); err != nil {
		return "", 0, err
	}
	start := time.Now()
	err = seed(path, rows)
	return key, time.Since(start), err
}

// newKey makes a write key in the database at path, creating the database
// if need be, with the server's own "keys create".
func newKey(bin, path string) (string, error) {
	out, err := exec.Command(bin, "keys", "create", "-name", "bench", "-db", path).Output()
	if err != nil {
		return "", fmt.Errorf("keys create: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// categories the seeded tutorials are spread over.
var categories = []string{"backend", "frontend", "databases", "devops", "security", "testing"}

var difficulties = []string{"beginner", "intermediate", "advanced"}

// vocabulary is what the seeded tutorials are written in: a small
// vocabulary, as a real library's is, drawn so that a few words are in
// almost every tutorial. commonWords go into each content with the
// probability beside them ("kubernetes" is the word in 95% of rows of
// issue 16); the other words are drawn with Zipf's law, the first most
// often, and many begin with a, t, d or e, so that a one-letter prefix
// matches most of the library.
var (
	commonWords = []struct {
		word string
		p    float64
	}{{"the", 0.99}, {"kubernetes", 0.95}, {"a", 0.9}, {"python", 0.6}, {"and", 0.8}}
	vocabulary = strings.Fields(`to of in data deploy test api app access
		table tutorial error event docker debug development design edge endpoint
		text thread token trace type admin agent async audit auth array
		database default delete driver dependency engine environment encoding
		server client cache write read commit query index page cursor key hash
		route row column trigger batch fsync handler json sqlite http go rust java
		typescript terraform testing templates tls timeout transaction elastic
		email export extension analytics ansible architecture authentication
		automation dashboard deployment diagram django distributed encryption
		flask graphql kafka lambda linux logging memory metrics migration
		monitoring network nginx oauth performance postgres react redis
		replication scaling schema security service storage stream sync
		unicode vector webhook worker yaml zero`)
)

// seedContent writes one tutorial's content into b: 40 to 80 words, each
// of commonWords by its probability, the rest from vocabulary.
func seedContent(b *strings.Builder, rng *rand.Rand, zipf *rand.Zipf) {
	b.Reset()
	n := 40 + rng.IntN(41)
	for _, c := range commonWords {
		if rng.Float64() < c.p {
			b.WriteString(c.word)
			b.WriteByte(' ')
			n--
		}
	}
	for range n {
		b.WriteString(vocabulary[zipf.Uint64()])
		b.WriteByte(' ')
	}
}

// seedTutorial is one seeded tutorial, in the columns of migration 1.
type seedTutorial struct {
	title, slug, excerpt, content string
	category, difficulty          string
	estimatedTime                 int
	published, created            time.Time
}

// seedTutorials calls add with tutorials named tutorial-1 to tutorial-n, in
// order, with short contents in the vocabulary above and publish times
// spread over three years, some of them equal (so that the orders' ties on
// id are met). Both engines are seeded from it, so that they hold the same
// tutorials.
func seedTutorials(n int, add func(t seedTutorial) error) error {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(vocabulary)-1))
	var content strings.Builder
	now := time.Now().UTC().Truncate(time.Second)
	for i := 1; i <= n; i++ {
		seedContent(&content, rng, zipf)
		t := seedTutorial{
			// Whole minutes over three years: about one tutorial in three
			// shares its minute with another at a million rows.
			published: now.Add(-time.Duration(rng.Int64N(3*365*24*60)) * time.Minute),
			created:   now,
		}
		t.title = fmt.Sprintf("Tutorial %d: %s and %s", i, vocabulary[zipf.Uint64()], vocabulary[rng.IntN(len(vocabulary))])
		t.slug = fmt.Sprintf("tutorial-%d", i)
		t.excerpt = "A tutorial the benchmark made."
		t.content = content.String()
		t.category = categories[i%len(categories)]
		t.difficulty = difficulties[(i/len(categories))%len(difficulties)]
		t.estimatedTime = 5 + i%115
		if err := add(t); err != nil {
			return fmt.Errorf("seed row %d: %w", i, err)
		}
	}
	return nil
}

// seed inserts n tutorials of seedTutorials into the SQLite database at
// path. It writes the columns of migration 1; the triggers of later
// migrations, if any, keep whatever they maintain up to date.
func seed(path string, n int) error {
	// No journal and no fsync while seeding, and a large page cache: in WAL
	// mode one transaction of a million rows writes the WAL several times
	// over. The database goes back to WAL, as the server wants it, after.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(OFF)"+
		"&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tutorials
		(title, slug, excerpt, content, category, difficulty, estimated_time, published_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	err = seedTutorials(n, func(t seedTutorial) error {
		created := t.created.Format(time.RFC3339)
		_, err := stmt.ExecContext(ctx, t.title, t.slug, t.excerpt, t.content, t.category, t.difficulty,
			t.estimatedTime, t.published.Format(time.RFC3339), created, created)
		return err
	})
	if err != nil {
		return err
	}
	// What the server's writer does at the end of every batch (see
	// foldTermsSQL in sqlite_list.go): the words of the new text join the
	// list a search looks prefixes up in. Done here, the server need not
	// do it for a million tutorials when it starts.
	for _, q := range []string{
		`INSERT INTO tutorials_unfolded (rowid, title, excerpt, content)
			SELECT id, title, excerpt, content FROM tutorials WHERE id IN (SELECT id FROM tutorials_unfolded_ids)`,
		`INSERT OR IGNORE INTO tutorials_terms (term) SELECT term FROM tutorials_unfolded_terms`,
		`INSERT INTO tutorials_unfolded (tutorials_unfolded) VALUES ('delete-all')`,
		`DELETE FROM tutorials_unfolded_ids`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "PRAGMA journal_mode = WAL")
	return err
}
