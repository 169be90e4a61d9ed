package sqlitedb

// Backups: a consistent copy of the database in a file of its own, made
// while others read and write it.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrBackupExists is a backup that would overwrite a file the caller did not
// say it may replace.
var ErrBackupExists = errors.New("backup file already exists")

// Backup writes a consistent copy of the database to dest. With replace
// false it refuses a dest that exists; with replace true it swaps an old
// dest for the new copy in one step. Either way dest is never a
// half-written copy: the copy is made in a temporary file beside it,
// checked, synced and only then renamed to dest.
func (db *DB) Backup(ctx context.Context, dest string, replace bool) (err error) {
	if fi, statErr := os.Stat(dest); statErr == nil {
		if src, srcErr := os.Stat(db.path); srcErr == nil && os.SameFile(fi, src) {
			return fmt.Errorf("%s is the database itself", dest)
		}
	}
	return WriteFile(ctx, dest, replace, func(tmp string) error { return db.vacuumInto(ctx, tmp) })
}

// WriteFile makes the SQLite database file dest with fill, which writes a
// database into the empty file whose path it is given. With replace false
// it refuses a dest that exists (ErrBackupExists); with replace true it
// swaps an old dest for the new file in one step. Either way dest is never
// a half-written file: fill writes a temporary file beside it, which is
// checked, synced and only then renamed to dest. Backup uses it, and so
// does another engine's backup, which writes the same kind of file.
func WriteFile(ctx context.Context, dest string, replace bool, fill func(path string) error) (err error) {
	if !replace {
		// Claim the name with O_EXCL, which fails if it exists, so that two
		// backups started at once cannot both take it, and the check is not
		// a step ahead of the write. The empty file is replaced by the rename
		// below, or removed if the backup fails.
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return ErrBackupExists
		} else if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		f.Close()
		defer func() {
			if err != nil {
				os.Remove(dest)
			}
		}()
	}

	// The temporary file is in dest's directory because rename is only
	// atomic within one file system. os.CreateTemp makes it empty and
	// readable by its owner only, as the database is; SQLite takes an
	// empty file as an empty database.
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer func() {
		if err != nil {
			os.Remove(tmpName)
		}
	}()

	if err := fill(tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := checkIntegrity(ctx, tmpName); err != nil {
		return fmt.Errorf("backup: the copy is damaged: %w", err)
	}
	if err := syncFile(tmpName); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmpName, dest); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The rename is only durable once the directory that records it is.
	if err := syncFile(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// vacuumInto copies the database to the empty file path with VACUUM INTO,
// which reads one snapshot (so the copy is consistent, as of the moment it
// began) and writes a compact database without the WAL.
//
// It runs on a connection of its own. Not the read pool: query_only refuses
// VACUUM INTO, as it writes a file. Not the writer: the one write connection
// would be taken for the whole copy, and every write would queue behind it.
// With WAL, a reader of its own lets the writer carry on.
func (db *DB) vacuumInto(ctx context.Context, path string) error {
	conn, err := sql.Open("sqlite", dsn(db.path, lockWait, ""))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", path)
	return err
}

// checkIntegrity opens the database file at path read-only and runs
// PRAGMA integrity_check, which reads every page and answers one row, "ok",
// or a row per problem. immutable: the file alone is checked, and no -wal
// or -shm beside it is made (a file in WAL mode would otherwise get both).
func checkIntegrity(ctx context.Context, path string) error {
	u := url.URL{Scheme: "file", Opaque: path, RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// syncFile flushes the file or directory at path to disk.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
