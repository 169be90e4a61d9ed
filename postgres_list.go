package main

// This file is the PostgreSQL engine's list and search: ListTutorials in
// SQL, to the same rules and bounds as SQLite's (see sqlite_list.go).
//
//   - A list without a search walks one index (postgres_schema.sql has one
//     for each filter with each sort) from where its page starts: after
//     the cursor of the page before (After), or after an OFFSET for a page
//     asked for by number. Its total is a sum of rows of tutorial_counts.
//   - A search takes its window, the ids of its newest matches, at most
//     bounds.window of them, from the GIN index of the search column; the
//     total is how many it found, exact when the window was not full. The
//     page is ranked (ts_rank over the words found in at most
//     bounds.common tutorials, title above excerpt above content) or
//     sorted within the window.
//
// Every query of a page runs in one read-only transaction, so that the
// page and its total come from one snapshot, under bounds.timeout.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// pgAfterPosition is, for each sort, the condition of the rows that come
// after a Position in that order (see afterPosition in sqlite_list.go).
var pgAfterPosition = map[string]string{
	"-published_at": "(published_at, id) < (@after_key, @after_id)",
	"published_at":  "published_at >= @after_key AND (published_at > @after_key OR id < @after_id)",
	"title":         "title >= @after_key AND (title > @after_key OR id < @after_id)",
	"-title":        "(title, id) < (@after_key, @after_id)",
}

// pgRelevance orders by the rare words of a search (see rareWords), and
// weighs a match in the title (weight A) ten times one in the
// content (C), one in the excerpt (B) five times, as bm25 does on SQLite.
// ts_rank takes the weights in the order D, C, B, A.
const pgRelevance = `ts_rank('{0, 0.1, 0.5, 1.0}', search, tutorials_search(@rare, @prefix)) DESC, id DESC`

func (s *postgresStore) ListTutorials(ctx context.Context, p ListParams) (TutorialList, error) {
	sort := p.Sort
	if sort == "" {
		sort = "-published_at"
	}
	if _, ok := sortOrders[sort]; !ok {
		return TutorialList{}, fmt.Errorf("list tutorials: unknown sort %q", p.Sort)
	}
	if !p.After.IsZero() && p.Query != "" && p.Sort == "" {
		return TutorialList{}, errors.New("list tutorials: a position in relevance order")
	}
	if !pgText(p.Category) {
		// PostgreSQL refuses to compare such text, and no tutorial holds it.
		return TutorialList{Tutorials: []TutorialSummary{}, TotalExact: true}, nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.bounds.timeout, ErrQueryTimeout)
	defer cancel()

	var list TutorialList
	err := s.db.ReadTx(ctx, func(tx pgx.Tx) error {
		var err error
		if p.Query == "" {
			list, err = s.listPage(ctx, tx, p, sort)
		} else {
			list, err = s.searchPage(ctx, tx, p, sort)
		}
		return err
	})
	if err != nil && errors.Is(context.Cause(ctx), ErrQueryTimeout) {
		return TutorialList{}, ErrQueryTimeout
	}
	return list, pgError(err)
}

// pgText reports whether PostgreSQL can take s as text: valid UTF-8
// without NUL. Everything stored is, since the API lets nothing else in;
// a filter from a query string may not be.
func pgText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// pgFilter is the WHERE condition of p's filters, with its arguments
// added to args.
func pgFilter(p ListParams, args pgx.NamedArgs) []string {
	var where []string
	if p.Category != "" {
		where = append(where, "category = @category")
		args["category"] = p.Category
	}
	if p.Difficulty != "" {
		where = append(where, "difficulty = @difficulty")
		args["difficulty"] = p.Difficulty
	}
	return where
}

// pgPage ends a query of a page in sort: its position (After) or its
// offset, and one row more than the page holds, to tell whether more
// follow. where is the query's condition so far.
func pgPage(p ListParams, sort string, where []string, args pgx.NamedArgs, offset int64) (string, error) {
	if !p.After.IsZero() {
		where = append(where, pgAfterPosition[sort])
		args["after_key"], args["after_id"], offset = p.After.Key, p.After.ID, 0
		if sort == "published_at" || sort == "-published_at" {
			t, err := time.Parse(timeFormat, p.After.Key)
			if err != nil {
				return "", fmt.Errorf("list tutorials: position %q: %w", p.After.Key, err)
			}
			args["after_key"] = t
		}
	}
	q := ""
	if len(where) > 0 {
		q = " WHERE " + strings.Join(where, " AND ")
	}
	args["limit"], args["offset"] = p.PerPage+1, offset
	return q + " ORDER BY " + sortOrders[sort] + " LIMIT @limit OFFSET @offset", nil
}

// listPage is a page of the list without a search, and its total from
// tutorial_counts.
func (s *postgresStore) listPage(ctx context.Context, tx pgx.Tx, p ListParams, sort string) (TutorialList, error) {
	args := pgx.NamedArgs{}
	where := pgFilter(p, args)
	list := TutorialList{TotalExact: true}
	countQuery := "SELECT COALESCE(SUM(n), 0) FROM tutorial_counts"
	if len(where) > 0 {
		countQuery += " WHERE " + strings.Join(where, " AND ")
	}
	if err := tx.QueryRow(ctx, countQuery, args).Scan(&list.Total); err != nil {
		return list, err
	}
	rest, err := pgPage(p, sort, where, args, pageOffset(p))
	if err != nil {
		return list, err
	}
	list.Tutorials, list.More, err = pgQueryPage(ctx, tx, p.PerPage, "SELECT "+pgTutorialColumns+" FROM tutorials"+rest, args)
	return list, err
}

// pgQueryPage runs a query of at most perPage+1 tutorials and returns the
// first perPage, and whether there was one more.
func pgQueryPage(ctx context.Context, tx pgx.Tx, perPage int64, query string, args pgx.NamedArgs) ([]TutorialSummary, bool, error) {
	list := []TutorialSummary{} // [] in JSON, never null
	rows, err := tx.Query(ctx, query, args)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanPgTutorial(rows)
		if err != nil {
			return nil, false, err
		}
		list = append(list, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if int64(len(list)) > perPage {
		return list[:perPage], true, nil
	}
	return list, false, nil
}

// searchPage is a page of a search: the window of its newest matches, then
// the page within it, in relevance or in sort.
func (s *postgresStore) searchPage(ctx context.Context, tx pgx.Tx, p ListParams, sort string) (TutorialList, error) {
	words := searchWords(p.Query)
	if len(words) == 0 {
		// Not the text itself: what people search for stays out of logs.
		return TutorialList{}, errors.New("list tutorials: no words to search for")
	}
	ids, complete, err := s.searchWindow(ctx, tx, p, words)
	if err != nil {
		return TutorialList{}, err
	}
	list := TutorialList{Total: int64(len(ids)), TotalExact: complete}
	args := pgx.NamedArgs{"window": ids}
	if p.Sort != "" {
		rest, err := pgPage(p, sort, []string{"id = ANY(@window)"}, args, pageOffset(p))
		if err != nil {
			return list, err
		}
		list.Tutorials, list.More, err = pgQueryPage(ctx, tx, p.PerPage, "SELECT "+pgTutorialColumns+" FROM tutorials"+rest, args)
		return list, err
	}

	// Ranked by the words that are not common; with none, the window's
	// own order, newest first, which is also what ties in relevance fall
	// back to.
	rare, prefix, err := s.rareWords(ctx, tx, words)
	if err != nil {
		return list, err
	}
	order := "id DESC"
	if len(rare) > 0 {
		order = pgRelevance
		args["rare"], args["prefix"] = rare, prefix
	}
	args["limit"], args["offset"] = p.PerPage+1, min(pageOffset(p), int64(len(ids)))
	list.Tutorials, list.More, err = pgQueryPage(ctx, tx, p.PerPage, "SELECT "+pgTutorialColumns+
		" FROM tutorials WHERE id = ANY(@window) ORDER BY "+order+" LIMIT @limit OFFSET @offset", args)
	return list, err
}

// searchWindow returns the ids of the newest matches of words that pass p's
// filters, newest first, at most bounds.window of them, and whether they are
// all there are. With a filter, at most bounds.scan matches are looked at,
// so that a filter that few matches pass cannot make the search read every
// match (see searchWindow in sqlite_list.go).
func (s *postgresStore) searchWindow(ctx context.Context, tx pgx.Tx, p ListParams, words []string) ([]int64, bool, error) {
	args := pgx.NamedArgs{"words": words, "window": s.bounds.window + 1}
	where := pgFilter(p, args)
	query := `SELECT id FROM tutorials WHERE search @@ tutorials_search(@words) ORDER BY id DESC LIMIT @window`
	if len(where) > 0 {
		query = `SELECT id FROM (SELECT id, category, difficulty FROM tutorials
				WHERE search @@ tutorials_search(@words) ORDER BY id DESC LIMIT @scan) AS m
			WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT @window`
		args["scan"] = s.bounds.scan
	}
	rows, err := tx.Query(ctx, query, args)
	if err != nil {
		return nil, false, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, false, err
	}
	if int64(len(ids)) > s.bounds.window {
		return ids[:s.bounds.window], false, nil
	}
	if len(where) == 0 {
		return ids, true, nil
	}
	// Fewer than a window passed the filter: all of them, unless the
	// matches looked at were not all there are.
	var looked int64
	err = tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM tutorials
		WHERE search @@ tutorials_search(@words) LIMIT @scan) AS m`,
		pgx.NamedArgs{"words": words, "scan": s.bounds.scan}).Scan(&looked)
	return ids, looked < s.bounds.scan, err
}

// rareWords returns those of words that are found in at most bounds.common
// tutorials, each once, and whether the last of them is the search's last
// word, which matches as a prefix: the words relevance is computed from.
// Counting a word's matches up to the bound reads at most that many.
func (s *postgresStore) rareWords(ctx context.Context, tx pgx.Tx, words []string) (rare []string, prefix bool, err error) {
	type word struct {
		text   string
		prefix bool
	}
	var seen []word
	for i, w := range words {
		wd := word{w, i == len(words)-1}
		if slices.Contains(seen, wd) {
			continue
		}
		seen = append(seen, wd)
		var n int64
		err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM tutorials
			WHERE search @@ tutorials_query(@word, @prefix) LIMIT @limit) AS m`,
			pgx.NamedArgs{"word": w, "prefix": wd.prefix, "limit": s.bounds.common + 1}).Scan(&n)
		if err != nil {
			return nil, false, err
		}
		if n <= s.bounds.common {
			rare, prefix = append(rare, w), wd.prefix
		}
	}
	return rare, prefix, nil
}
