package main

// This file is the PostgreSQL engine: the Store of store.go in SQL, one
// method per operation and one query each, on the tables of
// postgres_schema.sql (the list and the search are in postgres_list.go).
// How the queries run (the pool, the migrations under a lock, change
// detection, telling an unreachable database from a failed query) is the
// business of internal/pgdb.
//
// Any number of instances may share one database: nothing here keeps state
// between requests. The database enforces what must hold across them (one
// slug, If-Match, ids never reused), and Version tells every instance's
// caches when anyone has committed.

import (
	"context"
	_ "embed"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"tutorials/internal/pgdb"
)

// postgresSchema is the PostgreSQL schema as numbered migrations.
//
//go:embed postgres_schema.sql
var postgresSchema string

// postgresStore is a Store on one PostgreSQL database.
type postgresStore struct {
	db      *pgdb.DB
	bounds  listBounds    // as on SQLite: see postgres_list.go
	scans   chan struct{} // a slot for each search or deep page under way
	creates *pgCreates    // the group commit of creates: see postgres_create.go
}

// openPostgres connects to the database at url and migrates it.
func openPostgres(ctx context.Context, url string) (*postgresStore, error) {
	db, err := pgdb.Open(ctx, url, postgresSchema)
	if err != nil {
		return nil, err
	}
	return &postgresStore{db: db, bounds: defaultListBounds, scans: make(chan struct{}, scanSlots),
		creates: &pgCreates{db: db}}, nil
}

// pgError is err in the model's terms: not reaching the database is
// ErrUnavailable, whatever the operation.
func pgError(err error) error {
	if errors.Is(err, pgdb.ErrUnavailable) && !errors.Is(err, ErrUnavailable) {
		return unavailableError{err}
	}
	return err
}

// unavailableError is an error of pgdb's that is ErrUnavailable to the
// model, and reads as pgdb's alone.
type unavailableError struct{ err error }

func (e unavailableError) Error() string        { return e.err.Error() }
func (e unavailableError) Unwrap() error        { return e.err }
func (e unavailableError) Is(target error) bool { return target == ErrUnavailable }

func (s *postgresStore) Version(ctx context.Context) (int64, error) {
	n, err := s.db.Version(ctx)
	return n, pgError(err)
}
func (s *postgresStore) Ping(ctx context.Context) error { return pgError(s.db.Ping(ctx)) }
func (s *postgresStore) WriteFailure() error            { return nil }
func (s *postgresStore) Close() error                   { return s.db.Close() }

// ---- Tutorials ----

// pgTutorialColumns is the column list every query returns a tutorial with,
// in the order scanPgTutorial reads it; pgFullTutorialColumns adds what only
// a whole tutorial has.
const (
	pgTutorialColumns = `id, title, slug, excerpt, category, difficulty, estimated_time,
	published_at, created_at, updated_at`
	pgFullTutorialColumns = pgTutorialColumns + `, content, version`
)

// scanPgTutorial reads pgTutorialColumns, then the columns after them into
// more. Timestamps come back in UTC, as the API gives them.
func scanPgTutorial(row pgx.Row, more ...any) (TutorialSummary, error) {
	var t TutorialSummary
	dest := []any{&t.ID, &t.Title, &t.Slug, &t.Excerpt, &t.Category, &t.Difficulty,
		&t.EstimatedTime, &t.PublishedAt, &t.CreatedAt, &t.UpdatedAt}
	err := row.Scan(append(dest, more...)...)
	t.PublishedAt, t.CreatedAt, t.UpdatedAt = t.PublishedAt.UTC(), t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, err
}

// scanPgFullTutorial reads pgFullTutorialColumns of one tutorial, turning
// "no row" into ErrNotFound.
func scanPgFullTutorial(row pgx.Row) (Tutorial, error) {
	var t Tutorial
	var err error
	t.TutorialSummary, err = scanPgTutorial(row, &t.Content, &t.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, pgError(err)
}

func (s *postgresStore) TutorialBySlug(ctx context.Context, slug string) (Tutorial, error) {
	return scanPgFullTutorial(s.db.QueryRow(ctx, `SELECT `+pgFullTutorialColumns+` FROM tutorials WHERE slug = $1`, slug))
}

// CreateTutorial writes the create together with those that arrive beside
// it: see postgres_create.go.
func (s *postgresStore) CreateTutorial(ctx context.Context, in TutorialInput, now time.Time) (Tutorial, error) {
	return s.creates.create(ctx, in, now)
}

// pgSlugError turns the refusal of a duplicate slug (SQLSTATE 23505 on
// the slug's own constraint, nothing else) into ErrSlugTaken.
func pgSlugError(err error) error {
	if pgdb.IsUniqueViolation(err, "tutorials_slug_key") {
		return ErrSlugTaken
	}
	return pgError(err)
}

// pgWhereTutorial is how every UPDATE and DELETE of one tutorial picks its
// row: by slug and, under a Precondition, only at one of the revisions it
// names, unless any will do. Because the check is part of the write,
// nobody can change the row between the two: of several writers who
// expect the same version, the first moves it on, and the others, which
// PostgreSQL makes wait for its row lock and then check the row again, find
// none.
const pgWhereTutorial = `WHERE slug = @where_slug AND (@any_revision OR (id, version) IN (
		SELECT * FROM unnest(@revision_ids::bigint[], @revision_versions::bigint[])))`

// pgWhereArgs are the parameters of pgWhereTutorial.
func pgWhereArgs(args pgx.NamedArgs, slug string, check *Precondition) pgx.NamedArgs {
	ids, versions := []int64{}, []int64{}
	if check != nil {
		for _, r := range check.Revisions {
			ids, versions = append(ids, r.ID), append(versions, r.Version)
		}
	}
	args["where_slug"] = slug
	args["any_revision"] = check == nil || check.AnyRevision
	args["revision_ids"], args["revision_versions"] = ids, versions
	return args
}

// updateTutorial runs q, an UPDATE ... pgWhereTutorial RETURNING of one
// tutorial.
func (s *postgresStore) updateTutorial(ctx context.Context, slug string, check *Precondition, q string, args pgx.NamedArgs) (Tutorial, error) {
	t, err := scanPgFullTutorial(s.db.QueryRow(ctx, q, pgWhereArgs(args, slug, check)))
	if errors.Is(err, ErrNotFound) {
		return t, noRow(check)
	}
	return t, pgSlugError(err)
}

// The UPDATEs leave version alone: the trigger of postgres_schema.sql moves
// it on every update, ours or anybody's, and RETURNING shows the new one.
// updated_at never moves back, should clocks disagree.
const pgPatchSQL = `UPDATE tutorials SET
	title          = CASE WHEN @set_title          THEN @title          ELSE title          END,
	slug           = CASE WHEN @set_slug           THEN @slug           ELSE slug           END,
	excerpt        = CASE WHEN @set_excerpt        THEN @excerpt        ELSE excerpt        END,
	content        = CASE WHEN @set_content        THEN @content        ELSE content        END,
	category       = CASE WHEN @set_category       THEN @category       ELSE category       END,
	difficulty     = CASE WHEN @set_difficulty     THEN @difficulty     ELSE difficulty     END,
	estimated_time = CASE WHEN @set_estimated_time THEN @estimated_time::bigint ELSE estimated_time END,
	published_at   = CASE WHEN @set_published_at   THEN @published_at::timestamptz ELSE published_at END,
	updated_at     = GREATEST(@now::timestamptz, updated_at)
	` + pgWhereTutorial + `
	RETURNING ` + pgFullTutorialColumns

func (s *postgresStore) PatchTutorial(ctx context.Context, slug string, p TutorialPatch, now time.Time, check *Precondition) (Tutorial, error) {
	return s.updateTutorial(ctx, slug, check, pgPatchSQL, pgx.NamedArgs{
		"set_title": p.Title.Set, "title": p.Title.Value,
		"set_slug": p.Slug.Set, "slug": p.Slug.Value,
		"set_excerpt": p.Excerpt.Set, "excerpt": p.Excerpt.Value,
		"set_content": p.Content.Set, "content": p.Content.Value,
		"set_category": p.Category.Set, "category": p.Category.Value,
		"set_difficulty": p.Difficulty.Set, "difficulty": p.Difficulty.Value,
		"set_estimated_time": p.EstimatedTime.Set, "estimated_time": p.EstimatedTime.Value,
		"set_published_at": p.PublishedAt.Set, "published_at": p.PublishedAt.Value.UTC().Truncate(time.Second),
		"now": now.UTC().Truncate(time.Second),
	})
}

// pgReplaceSQL: a published_at left out goes back to the time of creation.
const pgReplaceSQL = `UPDATE tutorials SET
	title = @title, slug = @slug, excerpt = @excerpt, content = @content,
	category = @category, difficulty = @difficulty, estimated_time = @estimated_time,
	published_at = COALESCE(@published_at::timestamptz, created_at),
	updated_at = GREATEST(@now::timestamptz, updated_at)
	` + pgWhereTutorial + `
	RETURNING ` + pgFullTutorialColumns

func (s *postgresStore) ReplaceTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check *Precondition) (Tutorial, error) {
	var published *time.Time
	if in.PublishedAt != nil {
		p := in.PublishedAt.UTC().Truncate(time.Second)
		published = &p
	}
	return s.updateTutorial(ctx, slug, check, pgReplaceSQL, pgx.NamedArgs{
		"title": in.Title, "slug": in.Slug, "excerpt": in.Excerpt, "content": in.Content,
		"category": in.Category, "difficulty": in.Difficulty, "estimated_time": in.EstimatedTime,
		"published_at": published, "now": now.UTC().Truncate(time.Second),
	})
}

func (s *postgresStore) DeleteTutorial(ctx context.Context, slug string, check *Precondition) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM tutorials `+pgWhereTutorial, pgWhereArgs(pgx.NamedArgs{}, slug, check))
	if err != nil {
		return pgError(err)
	}
	if tag.RowsAffected() == 0 {
		return noRow(check)
	}
	return nil
}

// ---- API keys ----

func (s *postgresStore) CreateKey(ctx context.Context, k APIKey, hash []byte) (APIKey, error) {
	const q = `INSERT INTO api_keys (name, prefix, hash, scope, rate, burst, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`
	k.Active, k.CreatedAt = true, k.CreatedAt.UTC().Truncate(time.Second)
	rate, burst := limitColumns(k.Limit)
	err := s.db.QueryRow(ctx, q, k.Name, k.Prefix, hash, k.Scope, rate, burst, k.CreatedAt).Scan(&k.ID)
	return k, pgError(err)
}

func (s *postgresStore) SetKeyLimit(ctx context.Context, id int64, limit *KeyLimit) error {
	rate, burst := limitColumns(limit)
	tag, err := s.db.Exec(ctx, `UPDATE api_keys SET rate = $1, burst = $2 WHERE id = $3`, rate, burst, id)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return pgError(err)
}

// pgAPIKeyColumns is the column list scanPgAPIKey reads.
const pgAPIKeyColumns = `id, name, prefix, scope, active, rate, burst, created_at, last_used_at`

// scanPgAPIKey reads pgAPIKeyColumns, then the columns after them into more.
func scanPgAPIKey(row pgx.Row, more ...any) (APIKey, error) {
	var k APIKey
	var rate *float64
	var burst *int
	var lastUsed *time.Time
	dest := []any{&k.ID, &k.Name, &k.Prefix, &k.Scope, &k.Active, &rate, &burst, &k.CreatedAt, &lastUsed}
	if err := row.Scan(append(dest, more...)...); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return k, ErrNotFound
		}
		return k, pgError(err)
	}
	if rate != nil && burst != nil {
		k.Limit = &KeyLimit{Rate: *rate, Burst: *burst}
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if lastUsed != nil {
		k.LastUsedAt = lastUsed.UTC()
	}
	return k, nil
}

func (s *postgresStore) KeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	return scanPgAPIKey(s.db.QueryRow(ctx, `SELECT `+pgAPIKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
}

func (s *postgresStore) APIKeys(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	err := s.db.Query(ctx, func(rows pgx.Rows) error {
		for rows.Next() {
			k, err := scanPgAPIKey(rows)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		return nil
	}, `SELECT `+pgAPIKeyColumns+` FROM api_keys ORDER BY id`)
	return keys, pgError(err)
}

func (s *postgresStore) HasActiveKey(ctx context.Context) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE active)`).Scan(&ok)
	return ok, pgError(err)
}

func (s *postgresStore) RevokeKey(ctx context.Context, id int64) error {
	return pgError(s.db.Write(ctx, func(tx pgx.Tx) error {
		// FOR UPDATE: of two revocations at once, the second sees the first's.
		var active bool
		err := tx.QueryRow(ctx, `SELECT active FROM api_keys WHERE id = $1 FOR UPDATE`, id).Scan(&active)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case !active:
			return ErrAlreadyRevoked
		}
		_, err = tx.Exec(ctx, `UPDATE api_keys SET active = false WHERE id = $1`, id)
		return err
	}))
}

// SaveLastUsed merges with what other instances saved: GREATEST, so that a
// time never moves back (GREATEST ignores a NULL).
func (s *postgresStore) SaveLastUsed(ctx context.Context, used map[int64]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids, times := make([]int64, 0, len(used)), make([]time.Time, 0, len(used))
	for id, t := range used {
		ids, times = append(ids, id), append(times, t.UTC().Truncate(time.Second))
	}
	_, err := s.db.Exec(ctx, `UPDATE api_keys AS k SET last_used_at = GREATEST(k.last_used_at, u.at)
		FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`, ids, times)
	return pgError(err)
}
