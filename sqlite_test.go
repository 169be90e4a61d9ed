package main

import (
	"strconv"
	"strings"
	"testing"
)

// sqliteMigration returns the text of migration n of schema.sql, for a test
// that builds a database as an older release left it.
func sqliteMigration(t testing.TB, n int) string {
	t.Helper()
	_, rest, ok := strings.Cut(sqliteSchema, "-- migration "+strconv.Itoa(n)+":")
	if !ok {
		t.Fatalf("schema.sql has no migration %d", n)
	}
	text, _, _ := strings.Cut(rest, "\n-- migration "+strconv.Itoa(n+1)+":")
	return text[strings.IndexByte(text, '\n'):]
}
