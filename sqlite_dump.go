package main

// This file is the SQLite engine's Dump and Load: a whole database read out
// and written into another, for copy and for a backup from PostgreSQL.

import (
	"context"
	"database/sql"

	"tutorials/internal/sqlitedb"
)

func (s *sqliteStore) Dump(ctx context.Context, l Loader) error {
	return s.db.ScanTx(ctx, func(tx *sqlitedb.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+fullTutorialColumns+` FROM tutorials ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			t, err := scanFullTutorial(rows)
			if err != nil {
				return err
			}
			if err := l.Tutorial(ctx, t); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}

		keys, err := tx.QueryContext(ctx, `SELECT `+apiKeyColumns+`, hash FROM api_keys ORDER BY id`)
		if err != nil {
			return err
		}
		defer keys.Close()
		for keys.Next() {
			var hash []byte
			k, err := scanAPIKey(keys, &hash)
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

		// AUTOINCREMENT keeps the largest tutorial id ever given in
		// sqlite_sequence; keys have no such memory, and start after the
		// largest there is.
		var lastTutorial, lastKey int64
		err = tx.QueryRowContext(ctx, `SELECT
			(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'tutorials'),
			(SELECT COALESCE(MAX(id), 0) FROM api_keys)`).Scan(&lastTutorial, &lastKey)
		if err != nil {
			return err
		}
		return l.LastIDs(ctx, lastTutorial, lastKey)
	})
}

func (s *sqliteStore) Load(ctx context.Context, fill func(Loader) error) error {
	return s.db.Write(ctx, func(ctx context.Context, tx *sqlitedb.Tx) error {
		var data bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tutorials) OR EXISTS (SELECT 1 FROM api_keys)`).Scan(&data)
		if err != nil {
			return err
		}
		if data {
			return ErrNotEmpty
		}
		return fill(sqliteLoader{tx})
	})
}

// sqliteLoader writes what a Dump gives into one transaction. The triggers
// of schema.sql index each tutorial and count it, as for any insert.
type sqliteLoader struct{ tx *sqlitedb.Tx }

func (l sqliteLoader) Tutorial(ctx context.Context, t Tutorial) error {
	_, err := l.tx.ExecContext(ctx, `INSERT INTO tutorials (`+fullTutorialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Title, t.Slug, t.Excerpt, t.Category, t.Difficulty, t.EstimatedTime,
		formatTime(t.PublishedAt), formatTime(t.CreatedAt), formatTime(t.UpdatedAt), t.Content, t.Version)
	return err
}

func (l sqliteLoader) Key(ctx context.Context, k APIKey, hash []byte) error {
	rate, burst := limitColumns(k.Limit)
	var lastUsed any
	if !k.LastUsedAt.IsZero() {
		lastUsed = formatTime(k.LastUsedAt)
	}
	_, err := l.tx.ExecContext(ctx, `INSERT INTO api_keys
		(id, name, prefix, hash, scope, active, rate, burst, created_at, last_used_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.Prefix, hash, k.Scope, k.Active, rate, burst, formatTime(k.CreatedAt), lastUsed)
	return err
}

func (l sqliteLoader) LastIDs(ctx context.Context, tutorial, _ int64) error {
	// Inserting ids has already raised sqlite_sequence to the largest of
	// them; a larger one, of tutorials deleted at the source, is kept too.
	_, err := l.tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq)
		SELECT 'tutorials', :seq WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tutorials')`,
		sql.Named("seq", tutorial))
	if err != nil {
		return err
	}
	_, err = l.tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, :seq) WHERE name = 'tutorials'`,
		sql.Named("seq", tutorial))
	return err
}
