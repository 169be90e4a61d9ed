package sqlitedb

// Migrations: the schema is one text of numbered steps, each starting with
// a line "-- migration N: why". Open runs, in order and each in its own
// transaction, every step above the database's PRAGMA user_version, and
// sets user_version to N in the same transaction: a step happens
// completely or not at all, and never twice.

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
)

// migrationHeader matches the line that starts each migration.
var migrationHeader = regexp.MustCompile(`(?m)^-- migration (\d+):.*$`)

// migration is one numbered step of a schema.
type migration struct {
	version int
	sql     string
}

// migrations splits schema into its numbered steps, in order.
func migrations(schema string) ([]migration, error) {
	locs := migrationHeader.FindAllStringSubmatchIndex(schema, -1)
	var ms []migration
	for i, loc := range locs {
		version, _ := strconv.Atoi(schema[loc[2]:loc[3]])
		if version != i+1 {
			return nil, fmt.Errorf("schema: migration %d follows migration %d", version, i)
		}
		end := len(schema)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		ms = append(ms, migration{version: version, sql: schema[loc[1]:end]})
	}
	return ms, nil
}

// migrate runs the migrations the database has not had yet.
func (db *DB) migrate(ctx context.Context, schema string) error {
	ms, err := migrations(schema)
	if err != nil {
		return err
	}
	var current int
	if err := db.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this program (%d): upgrade tutorials", current, len(ms))
	}
	for _, m := range ms[current:] {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			// PRAGMA takes no parameters; the version is our own integer.
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version))
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %d: %w", m.version, err)
		}
	}
	return nil
}

// inTx runs fn in a transaction of the writer connection and commits it if
// fn returns nil. It is for work outside the batches: the migrations, before
// the writer starts.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return db.noteWrite(err) // BEGIN IMMEDIATE fails too on a file it cannot lock for writing
	}
	defer tx.Rollback() // a no-op once committed
	if err := fn(tx); err != nil {
		return db.noteWrite(err)
	}
	return db.noteWrite(tx.Commit())
}
