package main

// This file is the SQLite engine: the Store of store.go in SQL, one method
// per operation and one query each, on the tables of schema.sql (the list
// and the search, which need more, are in sqlite_list.go). How the
// queries run (the pools, the pragmas, the migrations, group commit,
// checkpoints, statement reuse, change detection, backups) is the business
// of internal/sqlitedb; nothing here needs to know it.

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"time"

	"tutorials/internal/sqlitedb"
)

// sqliteSchema is the SQLite schema as numbered migrations.
//
//go:embed schema.sql
var sqliteSchema string

// sqliteStore is a Store on one SQLite file.
type sqliteStore struct {
	db *sqlitedb.DB
	// bounds keep the cost of every list and search request bounded (see
	// sqlite_list.go); a test lowers them to reach them on a small database.
	bounds listBounds
}

// openSQLite opens (creating if need be) the SQLite database at path.
func openSQLite(ctx context.Context, path string) (*sqliteStore, error) {
	db, err := sqlitedb.Open(ctx, path, sqliteSchema, sqlitedb.Options{
		// The writes that run often keep their compiled statements.
		WriteQueries: []string{insertSQL, patchSQL, replaceSQL, deleteSQL, tutorialBySlugSQL},
		BatchEnd:     foldTermsSQL,
	})
	if err != nil {
		return nil, err
	}
	return &sqliteStore{db: db, bounds: defaultListBounds}, nil
}

func (s *sqliteStore) Version(ctx context.Context) (int64, error) { return s.db.Version(ctx) }
func (s *sqliteStore) Ping(ctx context.Context) error             { return s.db.Ping(ctx) }
func (s *sqliteStore) WriteFailure() error                        { return s.db.WriteFailure() }
func (s *sqliteStore) Close() error                               { return s.db.Close() }

func (s *sqliteStore) Backup(ctx context.Context, dest string, replace bool) error {
	err := s.db.Backup(ctx, dest, replace)
	if errors.Is(err, sqlitedb.ErrBackupExists) {
		return ErrBackupExists
	}
	return err
}

// ---- Tutorials ----

// tutorialColumns is the column list every query returns a tutorial with, in
// the order scanTutorial reads it; fullTutorialColumns adds what only a
// whole tutorial has, in the order scanFullTutorial reads it.
const (
	tutorialColumns = `id, title, slug, excerpt, category, difficulty, estimated_time,
	published_at, created_at, updated_at`
	fullTutorialColumns = tutorialColumns + `, content, version`
)

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// scanTutorial reads tutorialColumns, then the columns after them into more.
// Timestamps are stored as text in timeFormat (see schema.sql).
func scanTutorial(row scanner, more ...any) (TutorialSummary, error) {
	var t TutorialSummary
	var published, created, updated string
	dest := []any{&t.ID, &t.Title, &t.Slug, &t.Excerpt, &t.Category, &t.Difficulty,
		&t.EstimatedTime, &published, &created, &updated}
	if err := row.Scan(append(dest, more...)...); err != nil {
		return t, err
	}
	var err error
	if t.PublishedAt, err = time.Parse(timeFormat, published); err != nil {
		return t, err
	}
	if t.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
		return t, err
	}
	if t.UpdatedAt, err = time.Parse(timeFormat, updated); err != nil {
		return t, err
	}
	return t, nil
}

// scanFullTutorial reads fullTutorialColumns of one tutorial, turning "no
// row" into ErrNotFound.
func scanFullTutorial(row scanner) (Tutorial, error) {
	var t Tutorial
	var err error
	t.TutorialSummary, err = scanTutorial(row, &t.Content, &t.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

const tutorialBySlugSQL = `SELECT ` + fullTutorialColumns + ` FROM tutorials WHERE slug = ?`

func (s *sqliteStore) TutorialBySlug(ctx context.Context, slug string) (Tutorial, error) {
	return scanFullTutorial(s.db.QueryRow(ctx, tutorialBySlugSQL, slug))
}

const insertSQL = `INSERT INTO tutorials
	(title, slug, excerpt, content, category, difficulty, estimated_time,
	 published_at, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	RETURNING ` + fullTutorialColumns

func (s *sqliteStore) CreateTutorial(ctx context.Context, in TutorialInput, now time.Time) (Tutorial, error) {
	published := now
	if in.PublishedAt != nil {
		published = *in.PublishedAt
	}
	var t Tutorial
	err := s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		var err error
		t, err = scanFullTutorial(tx.QueryRowContext(ctx, insertSQL, in.Title, in.Slug, in.Excerpt, in.Content,
			in.Category, in.Difficulty, in.EstimatedTime,
			formatTime(published), formatTime(now), formatTime(now)))
		return err
	})
	return t, slugError(err)
}

// slugError turns SQLite's refusal of a duplicate slug into ErrSlugTaken,
// and leaves any other error as it is.
func slugError(err error) error {
	if sqlitedb.IsUniqueViolation(err) {
		return ErrSlugTaken
	}
	return err
}

// whereTutorial is how every UPDATE and DELETE of one tutorial picks its
// row: by slug and, for a write under a Precondition, only at one of the
// revisions it names, unless any will do. :revisions is a JSON array of [id,
// version] pairs, so that one fixed statement takes any number of them.
// Because the check is part of the write, nobody can change the row between
// the two: of several writers who expect the same version, the first moves
// it on and the others find no row.
const whereTutorial = `WHERE slug = :where_slug AND (:any_revision OR EXISTS (
		SELECT 1 FROM json_each(:revisions) AS r
		WHERE r.value ->> 0 = tutorials.id AND r.value ->> 1 = tutorials.version))`

// whereArgs are the parameters of whereTutorial.
func whereArgs(slug string, check *Precondition) []any {
	pairs := [][2]int64{} // [] in JSON, never null
	if check != nil {
		for _, r := range check.Revisions {
			pairs = append(pairs, [2]int64{r.ID, r.Version})
		}
	}
	revisions, _ := json.Marshal(pairs) // integers cannot fail to encode
	return []any{
		sql.Named("where_slug", slug),
		sql.Named("any_revision", check == nil || check.AnyRevision),
		sql.Named("revisions", string(revisions)),
	}
}

// noRow is the error of a write to one tutorial that found no row: the
// tutorial is not there or, under a Precondition, not as it was expected.
func noRow(check *Precondition) error {
	if check != nil {
		return ErrEditConflict
	}
	return ErrNotFound
}

// updateTutorial runs q, an UPDATE ... whereTutorial RETURNING of one
// tutorial, in one write.
func (s *sqliteStore) updateTutorial(ctx context.Context, slug string, check *Precondition, q string, args ...any) (Tutorial, error) {
	var t Tutorial
	err := s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		var err error
		t, err = scanFullTutorial(tx.QueryRowContext(ctx, q, append(args, whereArgs(slug, check)...)...))
		if errors.Is(err, ErrNotFound) {
			return noRow(check)
		}
		return err
	})
	return t, slugError(err)
}

// patchSQL sets each column to itself unless the patch sets it. One fixed
// statement, so that two clients that patch different fields at once cannot
// undo each other, as they could with read-modify-write.
//
// Every UPDATE of ours moves version on itself, so that RETURNING shows the
// new one; a trigger in schema.sql moves it after anybody else's.
const patchSQL = `UPDATE tutorials SET
	title          = CASE WHEN :set_title          THEN :title          ELSE title          END,
	slug           = CASE WHEN :set_slug           THEN :slug           ELSE slug           END,
	excerpt        = CASE WHEN :set_excerpt        THEN :excerpt        ELSE excerpt        END,
	content        = CASE WHEN :set_content        THEN :content        ELSE content        END,
	category       = CASE WHEN :set_category       THEN :category       ELSE category       END,
	difficulty     = CASE WHEN :set_difficulty     THEN :difficulty     ELSE difficulty     END,
	estimated_time = CASE WHEN :set_estimated_time THEN :estimated_time ELSE estimated_time END,
	published_at   = CASE WHEN :set_published_at   THEN :published_at   ELSE published_at   END,
	updated_at     = MAX(:now, updated_at),
	version        = version + 1
	` + whereTutorial + `
	RETURNING ` + fullTutorialColumns

func (s *sqliteStore) PatchTutorial(ctx context.Context, slug string, p TutorialPatch, now time.Time, check *Precondition) (Tutorial, error) {
	return s.updateTutorial(ctx, slug, check, patchSQL,
		sql.Named("set_title", p.Title.Set), sql.Named("title", p.Title.Value),
		sql.Named("set_slug", p.Slug.Set), sql.Named("slug", p.Slug.Value),
		sql.Named("set_excerpt", p.Excerpt.Set), sql.Named("excerpt", p.Excerpt.Value),
		sql.Named("set_content", p.Content.Set), sql.Named("content", p.Content.Value),
		sql.Named("set_category", p.Category.Set), sql.Named("category", p.Category.Value),
		sql.Named("set_difficulty", p.Difficulty.Set), sql.Named("difficulty", p.Difficulty.Value),
		sql.Named("set_estimated_time", p.EstimatedTime.Set), sql.Named("estimated_time", p.EstimatedTime.Value),
		sql.Named("set_published_at", p.PublishedAt.Set), sql.Named("published_at", formatTime(p.PublishedAt.Value)),
		sql.Named("now", formatTime(now)))
}

// replaceSQL: a published_at left out goes back to the time of creation.
const replaceSQL = `UPDATE tutorials SET
	title = :title, slug = :slug, excerpt = :excerpt, content = :content,
	category = :category, difficulty = :difficulty, estimated_time = :estimated_time,
	published_at = COALESCE(:published_at, created_at),
	updated_at = MAX(:now, updated_at),
	version = version + 1
	` + whereTutorial + `
	RETURNING ` + fullTutorialColumns

func (s *sqliteStore) ReplaceTutorial(ctx context.Context, slug string, in TutorialInput, now time.Time, check *Precondition) (Tutorial, error) {
	var published any
	if in.PublishedAt != nil {
		published = formatTime(*in.PublishedAt)
	}
	return s.updateTutorial(ctx, slug, check, replaceSQL,
		sql.Named("title", in.Title), sql.Named("slug", in.Slug),
		sql.Named("excerpt", in.Excerpt), sql.Named("content", in.Content),
		sql.Named("category", in.Category), sql.Named("difficulty", in.Difficulty),
		sql.Named("estimated_time", in.EstimatedTime),
		sql.Named("published_at", published),
		sql.Named("now", formatTime(now)))
}

const deleteSQL = `DELETE FROM tutorials ` + whereTutorial

func (s *sqliteStore) DeleteTutorial(ctx context.Context, slug string, check *Precondition) error {
	return s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		res, err := tx.ExecContext(ctx, deleteSQL, whereArgs(slug, check)...)
		if err != nil {
			return err
		}
		err = requireOneRow(res)
		if errors.Is(err, ErrNotFound) {
			return noRow(check)
		}
		return err
	})
}

// requireOneRow turns an UPDATE or DELETE that matched nothing into
// ErrNotFound.
func requireOneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// ---- API keys ----

func (s *sqliteStore) CreateKey(ctx context.Context, k APIKey, hash []byte) (APIKey, error) {
	const q = `INSERT INTO api_keys (name, prefix, hash, scope, rate, burst, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`
	k.Active, k.CreatedAt = true, k.CreatedAt.UTC().Truncate(time.Second)
	rate, burst := limitColumns(k.Limit)
	err := s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		return tx.QueryRowContext(ctx, q, k.Name, k.Prefix, hash, k.Scope, rate, burst, formatTime(k.CreatedAt)).Scan(&k.ID)
	})
	return k, err
}

// limitColumns is a key's own limit as its two columns: both NULL when it
// follows the server's.
func limitColumns(l *KeyLimit) (rate, burst any) {
	if l == nil {
		return nil, nil
	}
	return l.Rate, l.Burst
}

func (s *sqliteStore) SetKeyLimit(ctx context.Context, id int64, limit *KeyLimit) error {
	rate, burst := limitColumns(limit)
	return s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET rate = ?, burst = ? WHERE id = ?`, rate, burst, id)
		if err != nil {
			return err
		}
		return requireOneRow(res)
	})
}

// apiKeyColumns is the column list scanAPIKey reads.
const apiKeyColumns = `id, name, prefix, scope, active, rate, burst, created_at, COALESCE(last_used_at, '')`

// scanAPIKey reads apiKeyColumns, then the columns after them into more.
func scanAPIKey(row scanner, more ...any) (APIKey, error) {
	var k APIKey
	var created, lastUsed string
	var rate sql.NullFloat64
	var burst sql.NullInt64
	dest := []any{&k.ID, &k.Name, &k.Prefix, &k.Scope, &k.Active, &rate, &burst, &created, &lastUsed}
	if err := row.Scan(append(dest, more...)...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return k, ErrNotFound
		}
		return k, err
	}
	if rate.Valid {
		k.Limit = &KeyLimit{Rate: rate.Float64, Burst: int(burst.Int64)}
	}
	var err error
	if k.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
		return k, err
	}
	if lastUsed != "" {
		if k.LastUsedAt, err = time.Parse(timeFormat, lastUsed); err != nil {
			return k, err
		}
	}
	return k, nil
}

func (s *sqliteStore) KeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	const q = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE hash = ?`
	return scanAPIKey(s.db.QueryRow(ctx, q, hash))
}

func (s *sqliteStore) APIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.db.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

func (s *sqliteStore) HasActiveKey(ctx context.Context) (bool, error) {
	var ok bool
	err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE active = 1)`).Scan(&ok)
	return ok, err
}

func (s *sqliteStore) RevokeKey(ctx context.Context, id int64) error {
	return s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		var active bool
		err := tx.QueryRowContext(ctx, `SELECT active FROM api_keys WHERE id = ?`, id).Scan(&active)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case !active:
			return ErrAlreadyRevoked
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET active = 0 WHERE id = ?`, id)
		return err
	})
}

func (s *sqliteStore) SaveLastUsed(ctx context.Context, used map[int64]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	const q = `UPDATE api_keys SET last_used_at = MAX(COALESCE(last_used_at, ''), ?) WHERE id = ?`
	return s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		for id, t := range used {
			if _, err := tx.ExecContext(ctx, q, formatTime(t), id); err != nil {
				return err
			}
		}
		return nil
	})
}
