package main

// This file is the PostgreSQL engine's list and search: ListTutorials in
// SQL, to the same rules and bounds as SQLite's (see sqlite_list.go).
//
//   - A list without a search walks one index (postgres_schema.sql has one
//     for each filter with each sort) from where its page starts: after
//     the cursor of the page before (After), or after an OFFSET for a page
//     asked for by number. The walk reads ids only, from the index itself;
//     the rows are read for the page alone. Its total is a sum of rows of
//     tutorial_counts.
//   - A search is made into a tsquery once (tutorials_search, in SQL, so
//     that words are split as the tutorials were), then passed to each
//     query as a value, which PostgreSQL plans for, rather than as a
//     function it would call again for every row. It takes its window, the
//     ids of its newest matches, at most bounds.window of them, from the
//     GIN index; the total is how many it found, exact when the window was
//     not full. The page is ranked (ts_rank over the words found in at
//     most bounds.common tutorials, title above excerpt above content) or
//     sorted within the window.
//   - Searches and deep pages by number, the requests that may read many
//     rows, run at most scanSlots at a time, so that they can never hold
//     every connection lookups need (SQLite's scan pool does the same).
//
// Every query of a page runs in one read-only transaction, so that the
// page and its total come from one snapshot, under bounds.timeout.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// scanSlots is how many searches and deep pages one instance runs at once.
const scanSlots = 2

// pgAfterPosition is, for each sort, the condition of the rows that come
// after a Position in that order (see afterPosition in sqlite_list.go).
var pgAfterPosition = map[string]string{
	"-published_at": "(published_at, id) < (@after_key, @after_id)",
	"published_at":  "published_at >= @after_key AND (published_at > @after_key OR id < @after_id)",
	"title":         "title >= @after_key AND (title > @after_key OR id < @after_id)",
	"-title":        "(title, id) < (@after_key, @after_id)",
}

// pgRelevance orders by the rare words of a search (see rareWords): a match
// in the title (weight A) counts ten times one in the content (C), one in
// the excerpt (B) five times, as bm25 weighs them on SQLite. ts_rank takes
// the weights in the order D, C, B, A.
const pgRelevance = `ts_rank('{0, 0.1, 0.5, 1.0}', search, @rare::tsquery) DESC, id DESC`

// planned makes pgx send a query with its values for PostgreSQL to plan it
// for them, instead of a prepared statement that may be planned once for
// any: how many rows a tsquery matches decides the best plan.
const planned = pgx.QueryExecModeExec

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

	if p.Query != "" || p.After.IsZero() && pageOffset(p) > s.bounds.shallow {
		select {
		case s.scans <- struct{}{}:
			defer func() { <-s.scans }()
		case <-ctx.Done():
			return TutorialList{}, ErrQueryTimeout
		}
	}
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

// pgPage is the query of a page of tutorials in sort, among the rows of
// where: from its position (After) or its offset, with one row more than
// the page holds, to tell whether more follow. The index walk to the page
// reads ids only; the rows are read for the page alone.
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
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	args["limit"], args["offset"] = p.PerPage+1, offset
	order := " ORDER BY " + sortOrders[sort]
	return "SELECT " + pgTutorialColumns + " FROM tutorials WHERE id IN (SELECT id FROM tutorials" + cond + order +
		" LIMIT @limit OFFSET @offset)" + order, nil
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
	query, err := pgPage(p, sort, where, args, pageOffset(p))
	if err != nil {
		return list, err
	}
	list.Tutorials, list.More, err = pgQueryPage(ctx, tx, p.PerPage, query, args)
	return list, err
}

// pgQueryPage runs a query of at most perPage+1 tutorials and returns the
// first perPage, and whether there was one more.
func pgQueryPage(ctx context.Context, tx pgx.Tx, perPage int64, query string, args pgx.NamedArgs) ([]TutorialSummary, bool, error) {
	list := []TutorialSummary{} // [] in JSON, never null
	rows, err := tx.Query(ctx, query, planned, args)
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

// ---- Search ----

// searchPage is a page of a search: the window of its newest matches, then
// the page within it, in relevance or in sort.
func (s *postgresStore) searchPage(ctx context.Context, tx pgx.Tx, p ListParams, sort string) (TutorialList, error) {
	words := searchWords(p.Query)
	if len(words) == 0 {
		// Not the text itself: what people search for stays out of logs.
		return TutorialList{}, errors.New("list tutorials: no words to search for")
	}
	// The whole search, and each word alone (for rareWords), as tsquery
	// text; NULL for a search or a word with nothing to search.
	var query *string
	var parts []*string
	err := tx.QueryRow(ctx, `SELECT tutorials_search(@words)::text,
		ARRAY(SELECT tutorials_query(w, i = cardinality(@words))::text
			FROM unnest(@words::text[]) WITH ORDINALITY AS u(w, i) ORDER BY i)`,
		pgx.NamedArgs{"words": words}).Scan(&query, &parts)
	if err != nil || query == nil {
		return TutorialList{Tutorials: []TutorialSummary{}, TotalExact: true}, err
	}

	ids, complete, err := s.searchWindow(ctx, tx, p, *query)
	if err != nil {
		return TutorialList{}, err
	}
	list := TutorialList{Total: int64(len(ids)), TotalExact: complete}
	args := pgx.NamedArgs{"window": ids}
	if p.Sort != "" {
		page, err := pgPage(p, sort, []string{"id = ANY(@window)"}, args, pageOffset(p))
		if err != nil {
			return list, err
		}
		list.Tutorials, list.More, err = pgQueryPage(ctx, tx, p.PerPage, page, args)
		return list, err
	}

	// Ranked by the words that are not common; with none, the window's
	// own order, newest first, which is also what ties in relevance fall
	// back to.
	rare, err := s.rareWords(ctx, tx, parts)
	if err != nil {
		return list, err
	}
	order := "id DESC"
	if len(rare) > 0 {
		order = pgRelevance
		args["rare"] = "(" + strings.Join(rare, ") & (") + ")"
	}
	args["limit"], args["offset"] = p.PerPage+1, min(pageOffset(p), int64(len(ids)))
	list.Tutorials, list.More, err = pgQueryPage(ctx, tx, p.PerPage, "SELECT "+pgTutorialColumns+
		" FROM tutorials WHERE id = ANY(@window) ORDER BY "+order+" LIMIT @limit OFFSET @offset", args)
	return list, err
}

// searchWindow returns the ids of the newest matches of query that pass p's
// filters, newest first, at most bounds.window of them, and whether they are
// all there are. With a filter, at most bounds.scan matches are looked at,
// so that a filter that few matches pass cannot make the search read every
// match (see searchWindow in sqlite_list.go).
func (s *postgresStore) searchWindow(ctx context.Context, tx pgx.Tx, p ListParams, query string) ([]int64, bool, error) {
	args := pgx.NamedArgs{"query": query, "window": s.bounds.window + 1}
	where := pgFilter(p, args)
	q := `SELECT id FROM tutorials WHERE search @@ @query::tsquery ORDER BY id DESC LIMIT @window`
	if len(where) > 0 {
		q = `SELECT id FROM (SELECT id, category, difficulty FROM tutorials
				WHERE search @@ @query::tsquery ORDER BY id DESC LIMIT @scan) AS m
			WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id DESC LIMIT @window`
		args["scan"] = s.bounds.scan
	}
	rows, err := tx.Query(ctx, q, planned, args)
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
	looked, err := pgCountUpTo(ctx, tx, query, s.bounds.scan)
	return ids, looked < s.bounds.scan, err
}

// rareWords returns the tsqueries of those of parts (a search's words, each
// as tsquery text; nil for one with nothing to search) that are found in at
// most bounds.common tutorials, each once: the words relevance is computed
// from.
//
// Counting a word's matches costs a visit to the table for each on
// PostgreSQL, whose full-text index does not count: for a common word, the
// most of any search (BENCHMARKS.md). So the planner's estimate, from
// the statistics ANALYZE keeps, decides where it is clear, and a word is
// counted (up to the bound) only when its estimate is within a factor of
// two of the bound, where an estimate could be wrong about the side it is
// on. A common word, the costly case to count, is then never counted.
func (s *postgresStore) rareWords(ctx context.Context, tx pgx.Tx, parts []*string) ([]string, error) {
	var seen, rare []string
	for _, part := range parts {
		if part == nil || slices.Contains(seen, *part) {
			continue
		}
		seen = append(seen, *part)
		n, err := estimateMatches(ctx, tx, *part)
		if err != nil {
			return nil, err
		}
		if n >= float64(s.bounds.common)/2 && n <= 2*float64(s.bounds.common) {
			count, err := pgCountUpTo(ctx, tx, *part, s.bounds.common+1)
			if err != nil {
				return nil, err
			}
			n = float64(count)
		}
		if n <= float64(s.bounds.common) {
			rare = append(rare, *part)
		}
	}
	return rare, nil
}

// estimateMatches is the planner's estimate of how many tutorials match the
// tsquery query. EXPLAIN plans without running; the simple protocol puts
// the value into the statement, so that it is planned for that value.
func estimateMatches(ctx context.Context, tx pgx.Tx, query string) (float64, error) {
	var plan []byte
	err := tx.QueryRow(ctx, `EXPLAIN (FORMAT JSON) SELECT 1 FROM tutorials WHERE search @@ $1::tsquery`,
		pgx.QueryExecModeSimpleProtocol, query).Scan(&plan)
	if err != nil {
		return 0, err
	}
	var plans []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := json.Unmarshal(plan, &plans); err != nil || len(plans) != 1 {
		return 0, fmt.Errorf("EXPLAIN of a search: %q: %v", plan, err)
	}
	return plans[0].Plan.Rows, nil
}

// pgCountUpTo counts the matches of the tsquery query, but stops at limit.
func pgCountUpTo(ctx context.Context, tx pgx.Tx, query string, limit int64) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM tutorials WHERE search @@ @query::tsquery LIMIT @limit) AS m`,
		planned, pgx.NamedArgs{"query": query, "limit": limit}).Scan(&n)
	return n, err
}
