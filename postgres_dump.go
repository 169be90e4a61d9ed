package main

// This file is the PostgreSQL engine's Dump and Load, and its Backup, which
// is a Dump into a new SQLite file: one backup format for both engines, a
// file that `tutorials serve -db FILE` serves as it is.

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"tutorials/internal/sqlitedb"
)

func (s *postgresStore) Dump(ctx context.Context, l Loader) error {
	return pgError(s.db.SnapshotTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+pgFullTutorialColumns+` FROM tutorials ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var t Tutorial
			if t.TutorialSummary, err = scanPgTutorial(rows, &t.Content, &t.Version); err != nil {
				return err
			}
			if err := l.Tutorial(ctx, t); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}

		keys, err := tx.Query(ctx, `SELECT `+pgAPIKeyColumns+`, hash FROM api_keys ORDER BY id`)
		if err != nil {
			return err
		}
		defer keys.Close()
		for keys.Next() {
			var hash []byte
			k, err := scanPgAPIKey(keys, &hash)
			if err != nil {
				return err
			}
			if err := l.Key(ctx, k, hash); err != nil {
				return err
			}
		}
		if err := keys.Err(); err != nil {
			return err
		}

		// The largest ids the sequences gave, deleted rows' included (a
		// sequence not yet used has is_called false).
		var lastTutorial, lastKey int64
		err = tx.QueryRow(ctx, `SELECT
			(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM tutorials_id_seq),
			(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM api_keys_id_seq)`).Scan(&lastTutorial, &lastKey)
		if err != nil {
			return err
		}
		return l.LastIDs(ctx, lastTutorial, lastKey)
	}))
}

func (s *postgresStore) Load(ctx context.Context, fill func(Loader) error) error {
	return pgError(s.db.BulkWrite(ctx, func(tx pgx.Tx) error {
		var data bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tutorials) OR EXISTS (SELECT 1 FROM api_keys)`).Scan(&data)
		if err != nil {
			return err
		}
		if data {
			return ErrNotEmpty
		}
		// Each COPY is counted in tutorial_counts by the statement's trigger
		// (postgres_schema.sql, migration 2): one upsert a category and
		// difficulty for a thousand tutorials.
		l := &postgresLoader{tx: tx}
		if err := fill(l); err != nil {
			return err
		}
		return l.flush(ctx)
	}))
}

// postgresLoader writes what a Dump gives into one transaction, the
// tutorials by COPY, a thousand at a time. The trigger of
// postgres_schema.sql indexes each one for the search, as for any insert;
// an inserted tutorial keeps the version it is given.
type postgresLoader struct {
	tx        pgx.Tx
	tutorials [][]any // waiting for the next COPY
}

// copyColumns are the columns of tutorials a COPY fills, in the order of
// Tutorial's rows.
var copyColumns = []string{"id", "title", "slug", "excerpt", "category", "difficulty", "estimated_time",
	"published_at", "created_at", "updated_at", "content", "version"}

func (l *postgresLoader) Tutorial(ctx context.Context, t Tutorial) error {
	l.tutorials = append(l.tutorials, []any{t.ID, t.Title, t.Slug, t.Excerpt, t.Category, t.Difficulty,
		t.EstimatedTime, t.PublishedAt, t.CreatedAt, t.UpdatedAt, t.Content, t.Version})
	if len(l.tutorials) < 1000 {
		return nil
	}
	return l.flush(ctx)
}

// flush copies the tutorials waiting into the table.
func (l *postgresLoader) flush(ctx context.Context) error {
	if len(l.tutorials) == 0 {
		return nil
	}
	_, err := l.tx.CopyFrom(ctx, pgx.Identifier{"tutorials"}, copyColumns, pgx.CopyFromRows(l.tutorials))
	l.tutorials = l.tutorials[:0]
	return err
}

func (l *postgresLoader) Key(ctx context.Context, k APIKey, hash []byte) error {
	rate, burst := limitColumns(k.Limit)
	var lastUsed *time.Time
	if !k.LastUsedAt.IsZero() {
		lastUsed = &k.LastUsedAt
	}
	_, err := l.tx.Exec(ctx, `INSERT INTO api_keys
		(id, name, prefix, hash, scope, active, rate, burst, created_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.ID, k.Name, k.Prefix, hash, k.Scope, k.Active, rate, burst, k.CreatedAt, lastUsed)
	return err
}

// LastIDs moves each sequence on to the source's last id, or to the
// largest id inserted, whichever is larger: ids given explicitly do not
// move a sequence by themselves. A sequence with nothing to move on from
// stays unused.
func (l *postgresLoader) LastIDs(ctx context.Context, tutorial, key int64) error {
	if err := l.flush(ctx); err != nil {
		return err
	}
	for _, seq := range []struct {
		name, table string
		last        int64
	}{{"tutorials_id_seq", "tutorials", tutorial}, {"api_keys_id_seq", "api_keys", key}} {
		_, err := l.tx.Exec(ctx, `SELECT setval($1, GREATEST($2::bigint, MAX(id))) FROM `+seq.table+`
			HAVING GREATEST($2::bigint, MAX(id)) > 0`, seq.name, seq.last)
		if err != nil {
			return err
		}
	}
	return nil
}

// Backup writes the database to dest as a SQLite file, from one snapshot,
// the way SQLite's backups are written (see sqlitedb.WriteFile): never a
// half-written file, an existing dest refused unless replace is set.
func (s *postgresStore) Backup(ctx context.Context, dest string, replace bool) error {
	err := sqlitedb.WriteFile(ctx, dest, replace, func(path string) error {
		target, err := openSQLite(ctx, path)
		if err != nil {
			return err
		}
		err = target.Load(ctx, func(l Loader) error { return s.Dump(ctx, l) })
		// Close folds the write-ahead log into the file: it is whole.
		if closeErr := target.Close(); err == nil {
			err = closeErr
		}
		return err
	})
	if errors.Is(err, sqlitedb.ErrBackupExists) {
		return ErrBackupExists
	}
	return err
}
