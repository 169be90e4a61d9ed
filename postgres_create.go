package main

// Group commit of creates on PostgreSQL. The creates that arrive while
// others are being written wait, and are then written together:
//
//	s.creates.create(ctx, in, now)   what CreateTutorial does, for one create
//
// A batch is one INSERT of many rows, ON CONFLICT (slug) DO NOTHING,
// RETURNING the rows it wrote: one round trip, one statement to run and
// one commit for all of them, where each create alone paid for its own
// (BENCHMARKS.md has what that buys). Each create still gets its own
// answer, and only once its row is committed, as alone:
//
//   - a create whose row the statement did not return found its slug taken
//     (the conflict on tutorials_slug_key, and nothing else, is what DO
//     NOTHING passes over): ErrSlugTaken;
//   - two creates of one slug never share a batch, so that each row returned
//     answers exactly one create; the second waits for the next batch, where
//     it finds the slug taken, or free if the first failed;
//   - when the statement fails for any other reason, nothing of it was
//     written, and each of its creates is tried again alone, so that a
//     create fails only for a fault of its own; but when the database
//     cannot be reached, all of them fail with that.
//
// No goroutine runs in the background: a create that finds fewer than
// createWriters writers becomes one, and writes the oldest waiting creates,
// its own among them; once it has its answer it makes the longest waiting
// create a writer in its place, so that nobody answers late for having
// written others' batches.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"tutorials/internal/pgdb"
)

const (
	// createWriters is how many batches are written at once: while one
	// runs, the creates that arrive gather for the next. One at a time
	// made as many creates a second as two on the bench's machine, for a
	// third less of PostgreSQL's CPU each (BENCHMARKS.md): two batches at
	// once are smaller, and their backends contend for the same index pages.
	createWriters = 1
	// createBatch is the most creates one statement writes.
	createBatch = 32
)

// pgCreates gathers the creates of one store.
type pgCreates struct {
	db      *pgdb.DB
	mu      sync.Mutex
	queue   []*pgCreate // waiting to be written, oldest first
	writers int         // creates that write batches (those with writer set)
}

// pgCreate is one create: what to write, and then its answer.
type pgCreate struct {
	in        TutorialInput
	published time.Time
	now       time.Time

	// writer is set, under pgCreates.mu, on the create that writes
	// batches until it has its own answer: no other takes it into a batch.
	writer bool
	lead   chan struct{} // receives once when a waiting create is made a writer
	done   chan struct{} // closed once t and err are set
	t      Tutorial
	err    error
}

// create writes in, created at now, with the creates that wait beside it.
func (s *pgCreates) create(ctx context.Context, in TutorialInput, now time.Time) (Tutorial, error) {
	now = now.UTC().Truncate(time.Second)
	c := &pgCreate{in: in, published: now, now: now, lead: make(chan struct{}, 1), done: make(chan struct{})}
	if in.PublishedAt != nil {
		c.published = in.PublishedAt.UTC().Truncate(time.Second)
	}
	s.mu.Lock()
	s.queue = append(s.queue, c)
	if s.writers < createWriters {
		s.writers++
		c.writer = true
		s.mu.Unlock()
		s.write(c)
		return c.t, c.err
	}
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-c.lead:
		s.write(c)
	case <-ctx.Done():
		if s.leave(c) {
			return Tutorial{}, ctx.Err()
		}
		// Already in a batch, or made a writer: its answer comes when its
		// batch is committed.
		select {
		case <-c.done:
		case <-c.lead:
			s.write(c)
		}
	}
	return c.t, c.err
}

// leave takes c out of the queue, if it is waiting there to be taken into
// a batch, and reports whether it did.
func (s *pgCreates) leave(c *pgCreate) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.writer {
		return false
	}
	for i, q := range s.queue {
		if q == c {
			s.queue = append(s.queue[:i:i], s.queue[i+1:]...)
			return true
		}
	}
	return false
}

// write writes batches of the queue until c, a writer, has its answer;
// then it makes the longest waiting create a writer in its place, or, when
// none waits, gives its place among the writers back.
func (s *pgCreates) write(c *pgCreate) {
	for {
		s.mu.Lock()
		batch := s.take(c)
		s.mu.Unlock()
		s.writeBatch(batch)
		select {
		case <-c.done:
		default:
			continue // c was not among the oldest createBatch
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, next := range s.queue {
			if !next.writer {
				next.writer = true
				next.lead <- struct{}{}
				return
			}
		}
		s.writers--
		return
	}
}

// take removes from the queue the batch that c writes next: up to
// createBatch creates, oldest first, no two of one slug, and none of the
// other writers, which write their own.
func (s *pgCreates) take(c *pgCreate) []*pgCreate {
	var batch, rest []*pgCreate
	slugs := make(map[string]bool)
	for _, q := range s.queue {
		if len(batch) == createBatch || slugs[q.in.Slug] || q.writer && q != c {
			rest = append(rest, q)
			continue
		}
		slugs[q.in.Slug] = true
		batch = append(batch, q)
	}
	s.queue = rest
	return batch
}

// pgCreateBatchSQL writes a batch: the arrays hold one element a create.
const pgCreateBatchSQL = `INSERT INTO tutorials
	(title, slug, excerpt, content, category, difficulty, estimated_time,
	 published_at, created_at, updated_at)
	SELECT title, slug, excerpt, content, category, difficulty, estimated_time, published_at, created_at, created_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		$7::bigint[], $8::timestamptz[], $9::timestamptz[])
		AS new(title, slug, excerpt, content, category, difficulty, estimated_time, published_at, created_at)
	ON CONFLICT (slug) DO NOTHING
	RETURNING ` + pgFullTutorialColumns

// pgCreateSQL writes one create alone.
const pgCreateSQL = `INSERT INTO tutorials
	(title, slug, excerpt, content, category, difficulty, estimated_time,
	 published_at, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
	RETURNING ` + pgFullTutorialColumns

// writeBatch writes batch and gives each of its creates its answer. The
// statement runs for the batch, not for any one request: a client that
// goes away does not cancel the others' creates.
func (s *pgCreates) writeBatch(batch []*pgCreate) {
	ctx := context.Background()
	defer func() {
		for _, c := range batch {
			close(c.done)
		}
	}()
	if len(batch) == 1 {
		batch[0].t, batch[0].err = s.writeOne(ctx, batch[0])
		return
	}
	n := len(batch)
	titles, slugs, excerpts, contents := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	categories, difficulties := make([]string, n), make([]string, n)
	times, published, created := make([]*int64, n), make([]time.Time, n), make([]time.Time, n)
	for i, c := range batch {
		titles[i], slugs[i], excerpts[i], contents[i] = c.in.Title, c.in.Slug, c.in.Excerpt, c.in.Content
		categories[i], difficulties[i], times[i] = c.in.Category, c.in.Difficulty, c.in.EstimatedTime
		published[i], created[i] = c.published, c.now
	}
	written := make(map[string]Tutorial, n)
	err := s.db.Query(ctx, func(rows pgx.Rows) error {
		for rows.Next() {
			var t Tutorial
			var err error
			if t.TutorialSummary, err = scanPgTutorial(rows, &t.Content, &t.Version); err != nil {
				return err
			}
			written[t.Slug] = t
		}
		return nil
	}, pgCreateBatchSQL, titles, slugs, excerpts, contents, categories, difficulties, times, published, created)
	switch {
	case errors.Is(err, pgdb.ErrUnavailable):
		for _, c := range batch {
			c.err = pgError(err)
		}
	case err != nil:
		for _, c := range batch {
			c.t, c.err = s.writeOne(ctx, c)
		}
	default:
		for _, c := range batch {
			var ok bool
			if c.t, ok = written[c.in.Slug]; !ok {
				c.err = ErrSlugTaken
			}
		}
	}
}

// writeOne writes c alone.
func (s *pgCreates) writeOne(ctx context.Context, c *pgCreate) (Tutorial, error) {
	t, err := scanPgFullTutorial(s.db.QueryRow(ctx, pgCreateSQL, c.in.Title, c.in.Slug, c.in.Excerpt, c.in.Content,
		c.in.Category, c.in.Difficulty, c.in.EstimatedTime, c.published, c.now))
	return t, pgSlugError(err)
}
