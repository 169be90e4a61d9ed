package main

// This file is the copy command: everything in one database, keys
// included, moved into an empty other, in either direction between SQLite
// and PostgreSQL. It is how a site moves up from one file to a shared
// database, or back.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

func runCopy(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("copy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("copy takes two databases, FROM and TO, each a SQLite file or a postgres:// URL")
	}
	from, to := fs.Arg(0), fs.Arg(1)
	if from == to {
		return usagef("copy: FROM and TO are the same database")
	}
	src, err := openExisting(ctx, from)
	if err != nil {
		return err
	}
	defer src.Close()

	// A SQLite file that copy creates and then cannot fill is removed, so
	// that a failed copy leaves nothing behind.
	created := false
	if !isPostgresURL(to) {
		_, err := os.Stat(to)
		created = errors.Is(err, os.ErrNotExist)
	}
	dst, err := OpenStore(ctx, to)
	if err != nil {
		return err
	}
	counts := &countingLoader{}
	err = dst.Load(ctx, func(l Loader) error {
		counts.Loader = l
		return src.Dump(ctx, counts)
	})
	if closeErr := dst.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		if created {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(to + suffix)
			}
		}
		if errors.Is(err, ErrNotEmpty) {
			return fmt.Errorf("%s already holds tutorials or keys: copy writes only into an empty database", displayDB(to))
		}
		return fmt.Errorf("copy: %w", err)
	}
	fmt.Fprintf(stdout, "copied %d tutorials and %d keys from %s to %s\n",
		counts.tutorials, counts.keys, displayDB(from), displayDB(to))
	return nil
}

// countingLoader passes a Dump on to a Loader, counting what it passes.
type countingLoader struct {
	Loader
	tutorials, keys int
}

func (c *countingLoader) Tutorial(ctx context.Context, t Tutorial) error {
	c.tutorials++
	return c.Loader.Tutorial(ctx, t)
}

func (c *countingLoader) Key(ctx context.Context, k APIKey, hash []byte) error {
	c.keys++
	return c.Loader.Key(ctx, k, hash)
}
