package main

// This file is the SQLite engine's list and search: ListTutorials in SQL, built
// so that no request's cost grows with the size of the library.
//
//   - A list without a search reads one index in its order from where the
//     page starts: from the cursor of the page before (After), or after an
//     OFFSET for a page asked for by number. Its total is a sum of rows of
//     tutorial_counts.
//   - A search first takes its window: the ids of its newest matches, at
//     most bounds.window of them, straight from the full-text index, which
//     keeps them in id order. The total is how many it found, exact when
//     the window was not full; the page is ranked or sorted within the
//     window. Narrow searches are thus answered exactly; a search matching
//     most of the library is answered among its newest matches.
//   - Relevance is bm25 over the words of the search that are not common
//     (found in more than bounds.common tutorials): FTS5 weighs a word by
//     reading every one of its matches, and a common word weighs little.
//     A search of common words only lists its window newest first.
//
// Every query runs under a deadline (bounds.timeout), and the ones that may
// walk many rows run on the engine's scan pool (see internal/sqlitedb), so
// that they can never hold the connections lookups need.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"tutorials/internal/sqlitedb"
)

// listBounds are the limits that keep each list and search request's cost
// bounded. They are fields, not constants, so that a test can lower them to
// reach them on a small database.
type listBounds struct {
	// window is how many matches a search counts, ranks and sorts: past
	// that, its newest window matches are its answer and its total is a
	// lower bound.
	window int64
	// scan is how many matches of its words a search with a filter looks
	// at to fill its window with tutorials that pass the filter.
	scan int64
	// common is how many tutorials a word may be in and still count for
	// relevance.
	common int64
	// shallow is the deepest OFFSET, in rows, of a list without a search
	// that still runs on the read pool; deeper pages run on the scan pool.
	shallow int64
	// timeout is the deadline of every list and search query.
	timeout time.Duration
	// expansions is how many words a search's last word may be the prefix
	// of and still be looked up by name (see prefixMatch).
	expansions int
}

var defaultListBounds = listBounds{
	window:     1000,
	scan:       20_000,
	common:     100_000,
	shallow:    1000,
	timeout:    2 * time.Second,
	expansions: 100,
}

// sortOrders maps each sort the API accepts to its ORDER BY. Every order ends
// in id DESC, so that it is total: rows that tie on the sort key keep one
// order from page to page, and paging never repeats or skips one.
var sortOrders = map[string]string{
	"-published_at": "published_at DESC, id DESC",
	"published_at":  "published_at ASC, id DESC",
	"title":         "title ASC, id DESC",
	"-title":        "title DESC, id DESC",
}

// afterPosition is, for each sort, the condition of the rows that come
// after a Position (its key, then its id) in that order. The descending
// sorts compare a row value, which SQLite seeks to in the index directly;
// the ascending ones cannot, since their id runs the other way, so they
// start from the key and pass over the rows that tie with it.
var afterPosition = map[string]string{
	"-published_at": "(published_at, id) < (:after_key, :after_id)",
	"published_at":  "published_at >= :after_key AND (published_at > :after_key OR id < :after_id)",
	"title":         "title >= :after_key AND (title > :after_key OR id < :after_id)",
	"-title":        "(title, id) < (:after_key, :after_id)",
}

func (s *sqliteStore) ListTutorials(ctx context.Context, p ListParams) (TutorialList, error) {
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
	ctx, cancel := context.WithTimeoutCause(ctx, s.bounds.timeout, ErrQueryTimeout)
	defer cancel()

	// Only a list that reads a few index entries before its page may use
	// the read pool, beside the lookups.
	read := s.db.ScanTx
	if p.Query == "" && (!p.After.IsZero() || pageOffset(p) <= s.bounds.shallow) {
		read = s.db.ReadTx
	}
	var list TutorialList
	err := read(ctx, func(tx *sqlitedb.Tx) error {
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
	return list, err
}

// pageOffset is how many rows come before p's page when it is asked for by
// number. A page so far out that its offset would overflow is past the end
// of any list: the largest offset SQLite takes stands for it.
func pageOffset(p ListParams) int64 {
	if p.Page-1 > math.MaxInt64/p.PerPage {
		return math.MaxInt64
	}
	return (p.Page - 1) * p.PerPage
}

// filterSQL is the WHERE condition of p's filters, on the columns of
// tutorials (prefixed with table, when given), and its parameters.
func filterSQL(p ListParams, table string) (where []string, args []any) {
	if p.Category != "" {
		where = append(where, table+"category = :category")
		args = append(args, sql.Named("category", p.Category))
	}
	if p.Difficulty != "" {
		where = append(where, table+"difficulty = :difficulty")
		args = append(args, sql.Named("difficulty", p.Difficulty))
	}
	return where, args
}

// pageSQL ends a query of a page in sort: its position (After) or its
// offset, and one row more than the page holds, to tell whether more
// follow. where is the query's condition so far.
func pageSQL(p ListParams, sort string, where []string, args []any, offset int64) (string, []any) {
	if !p.After.IsZero() {
		where = append(where, afterPosition[sort])
		args = append(args, sql.Named("after_key", p.After.Key), sql.Named("after_id", p.After.ID))
		offset = 0
	}
	q := ""
	if len(where) > 0 {
		q = " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + sortOrders[sort] + " LIMIT :limit OFFSET :offset"
	return q, append(args, sql.Named("limit", p.PerPage+1), sql.Named("offset", offset))
}

// listPage is a page of the list without a search: one walk of the index
// of its filters and sort (see schema.sql), and a total from
// tutorial_counts, whose columns have the names of the filter's: a few rows,
// not a COUNT(*) of every matching row.
func (s *sqliteStore) listPage(ctx context.Context, tx *sqlitedb.Tx, p ListParams, sort string) (TutorialList, error) {
	where, args := filterSQL(p, "")
	list := TutorialList{TotalExact: true}
	countQuery := "SELECT COALESCE(SUM(n), 0) FROM tutorial_counts"
	if len(where) > 0 {
		countQuery += " WHERE " + strings.Join(where, " AND ")
	}
	if err := tx.QueryRowContext(ctx, countQuery, args...).Scan(&list.Total); err != nil {
		return list, err
	}
	rest, args := pageSQL(p, sort, where, args, pageOffset(p))
	var err error
	list.Tutorials, list.More, err = queryPage(ctx, tx, p.PerPage, "SELECT "+tutorialColumns+" FROM tutorials"+rest, args...)
	return list, err
}

// queryPage runs a query of at most perPage+1 tutorials and returns the
// first perPage, and whether there was one more.
func queryPage(ctx context.Context, tx *sqlitedb.Tx, perPage int64, query string, args ...any) ([]TutorialSummary, bool, error) {
	list := []TutorialSummary{} // [] in JSON, never null
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTutorial(rows)
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
func (s *sqliteStore) searchPage(ctx context.Context, tx *sqlitedb.Tx, p ListParams, sort string) (TutorialList, error) {
	phrases, err := s.searchPhrases(ctx, tx, searchWords(p.Query))
	if err != nil || phrases == nil {
		// No tutorial holds a word that starts with the last one.
		return TutorialList{Tutorials: []TutorialSummary{}, TotalExact: true}, err
	}
	// Explicit ANDs: FTS5 reads two phrases side by side as both, but not a
	// phrase beside the parenthesised words of a prefix (see prefixMatch).
	match := strings.Join(phrases, " AND ")
	ids, complete, err := s.searchWindow(ctx, tx, p, match)
	if err != nil {
		return TutorialList{}, err
	}
	list := TutorialList{Total: int64(len(ids)), TotalExact: complete}
	window, _ := json.Marshal(ids) // integers cannot fail to encode
	args := []any{sql.Named("window", string(window))}
	inWindow := "id IN (SELECT value FROM json_each(:window))"

	if p.Sort != "" {
		rest, args := pageSQL(p, sort, []string{inWindow}, args, pageOffset(p))
		list.Tutorials, list.More, err = queryPage(ctx, tx, p.PerPage, "SELECT "+tutorialColumns+" FROM tutorials"+rest, args...)
		return list, err
	}

	rare, err := s.rareWords(ctx, tx, phrases)
	if err != nil {
		return list, err
	}
	offset := min(pageOffset(p), int64(len(ids)))
	if len(rare) == 0 {
		// Nothing to rank by: the window's own order, newest first, which
		// is also what ties in relevance fall back to.
		page, _ := json.Marshal(ids[offset:min(offset+p.PerPage+1, int64(len(ids)))])
		list.Tutorials, list.More, err = queryPage(ctx, tx, p.PerPage,
			"SELECT "+tutorialColumns+" FROM tutorials WHERE "+inWindow+" ORDER BY id DESC",
			sql.Named("window", string(page)))
		return list, err
	}

	// bm25 over the rare words, for the rows of the window. The window's
	// rows all hold the rare words, so the rows of their match from the
	// oldest of the window up are a small superset of it; the window
	// itself is tested with a unary + on rowid, so that SQLite asks the
	// full-text index for one match only, not for one per id of the
	// window (bm25 would weigh the words again for each).
	lowest := int64(0)
	if len(ids) > 0 {
		lowest = ids[len(ids)-1]
	}
	list.Tutorials, list.More, err = queryPage(ctx, tx, p.PerPage, `SELECT `+qualifiedTutorialColumns+`
		FROM tutorials_fts CROSS JOIN tutorials AS t ON t.id = tutorials_fts.rowid
		WHERE tutorials_fts MATCH :rare AND tutorials_fts.rowid >= :lowest
			AND +tutorials_fts.rowid IN (SELECT value FROM json_each(:window))
		ORDER BY `+relevanceOrder+` LIMIT :limit OFFSET :offset`,
		sql.Named("rare", strings.Join(rare, " AND ")), sql.Named("lowest", lowest), args[0],
		sql.Named("limit", p.PerPage+1), sql.Named("offset", offset))
	return list, err
}

// qualifiedTutorialColumns is tutorialColumns of the table t, for a query
// that joins it with another that has an id of its own.
const qualifiedTutorialColumns = `t.id, t.title, t.slug, t.excerpt, t.category, t.difficulty,
	t.estimated_time, t.published_at, t.created_at, t.updated_at`

// relevanceOrder is the order of a search without sort: best match first
// (bm25 scores lower for better matches), then id DESC, so that it is total
// too. The weights of bm25 follow the columns (title, excerpt, content): a
// word in the title counts ten times one in the content, one in the
// excerpt five times.
const relevanceOrder = "bm25(tutorials_fts, 10.0, 5.0, 1.0) ASC, t.id DESC"

// searchWindow returns the ids of the newest matches of match that pass p's
// filters, newest first, at most bounds.window of them, and whether they
// are all there are.
//
// Without a filter they come straight from the full-text index, which
// keeps each word's matches in id order and reads only as many as it
// returns. With one, each match is looked up to test it (CROSS JOIN keeps
// SQLite from walking the filter's index instead, every row of a category
// for a few matches), and at most bounds.scan of them are, so that a filter
// that few matches pass cannot make the search read every match.
func (s *sqliteStore) searchWindow(ctx context.Context, tx *sqlitedb.Tx, p ListParams, match string) ([]int64, bool, error) {
	where, args := filterSQL(p, "t.")
	args = append(args, sql.Named("match", match), sql.Named("window", s.bounds.window+1))
	query := `SELECT rowid FROM tutorials_fts WHERE tutorials_fts MATCH :match ORDER BY rowid DESC LIMIT :window`
	if len(where) > 0 {
		query = `SELECT t.id FROM (SELECT rowid AS id FROM tutorials_fts WHERE tutorials_fts MATCH :match
				ORDER BY rowid DESC LIMIT :scan) AS m
			CROSS JOIN tutorials AS t ON t.id = m.id
			WHERE ` + strings.Join(where, " AND ") + ` ORDER BY m.id DESC LIMIT :window`
		args = append(args, sql.Named("scan", s.bounds.scan))
	}
	ids, err := queryIDs(ctx, tx, query, args...)
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
	looked, err := countUpTo(ctx, tx, match, s.bounds.scan)
	return ids, looked < s.bounds.scan, err
}

// rareWords returns those of phrases that are found in at most
// bounds.common tutorials, each once: the ones relevance is computed from.
// Counting a word's matches up to the bound reads at most that many.
func (s *sqliteStore) rareWords(ctx context.Context, tx *sqlitedb.Tx, phrases []string) ([]string, error) {
	var rare []string
	for _, ph := range phrases {
		if slices.Contains(rare, ph) {
			continue
		}
		n, err := countUpTo(ctx, tx, ph, s.bounds.common+1)
		if err != nil {
			return nil, err
		}
		if n <= s.bounds.common {
			rare = append(rare, ph)
		}
	}
	return rare, nil
}

// countUpTo counts the matches of match, but stops at limit.
func countUpTo(ctx context.Context, tx *sqlitedb.Tx, match string, limit int64) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM tutorials_fts
		WHERE tutorials_fts MATCH :match LIMIT :limit)`, sql.Named("match", match), sql.Named("limit", limit)).Scan(&n)
	return n, err
}

// queryIDs runs a query of one column of ids.
func queryIDs(ctx context.Context, tx *sqlitedb.Tx, query string, args ...any) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := []int64{} // [] in JSON, never null
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// searchPhrases turns the words a person typed into the FTS5 phrases that
// find the tutorials holding each, the last one as a prefix ("flas" finds
// Flask, as the user is likely still typing it). It returns nil when no
// tutorial can match: when no word of the index starts with the last one.
func (s *sqliteStore) searchPhrases(ctx context.Context, tx *sqlitedb.Tx, words []string) ([]string, error) {
	if len(words) == 0 {
		// Not the text itself: what people search for stays out of logs.
		return nil, errors.New("list tutorials: no words to search for")
	}
	phrases := ftsPhrases(words)
	last, ok, err := s.prefixMatch(ctx, tx, words[len(words)-1])
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return phrases, nil // FTS5's own prefix query
	case last == "":
		return nil, nil
	}
	phrases[len(phrases)-1] = last
	return phrases, nil
}

// foldTermsSQL add the words of the text written since they last ran to
// tutorials_terms (see migration 8 in schema.sql): the writer runs them at
// the end of every batch. They index that text in tutorials_unfolded, read
// its words, and empty it and tutorials_unfolded_ids. The emptying sends
// FTS5 its command only when there is something to empty, so that a batch
// that wrote no text writes no page for it.
var foldTermsSQL = []string{
	`INSERT INTO tutorials_unfolded (rowid, title, excerpt, content)
		SELECT id, title, excerpt, content FROM tutorials WHERE id IN (SELECT id FROM tutorials_unfolded_ids)`,
	`INSERT OR IGNORE INTO tutorials_terms (term) SELECT term FROM tutorials_unfolded_terms`,
	`INSERT INTO tutorials_unfolded (tutorials_unfolded)
		SELECT 'delete-all' WHERE EXISTS (SELECT 1 FROM tutorials_unfolded)`,
	`DELETE FROM tutorials_unfolded_ids`,
}

// prefixMatch returns the FTS5 query of the words of the index that start
// with word, each by name ("kubernetes" OR "kubectl"), which FTS5 reads
// lazily, newest match first, where for a prefix query it would merge every
// one of their lists first. "" means no word starts with it. ok is false
// when FTS5's own prefix query must do: while tutorials_unfolded_ids names
// text whose words tutorials_terms may not have yet; for a prefix of one or two
// letters, which has an index of its own (migration 7) and may start
// thousands of words; for a prefix of more words than bounds.expansions;
// and for a word that is not plain ASCII letters and digits, the only words
// this code can be sure FTS5's tokenizer keeps whole and only lowers the
// case of.
func (s *sqliteStore) prefixMatch(ctx context.Context, tx *sqlitedb.Tx, word string) (match string, ok bool, err error) {
	if len(word) < 3 || strings.ContainsFunc(word, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) {
		return "", false, nil
	}
	var pending bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM tutorials_unfolded_ids)`).Scan(&pending); err != nil || pending {
		return "", false, err
	}
	from := strings.ToLower(word)
	to := from[:len(from)-1] + string(from[len(from)-1]+1) // the first text past every word that starts with from
	rows, err := tx.QueryContext(ctx, `SELECT term FROM tutorials_terms WHERE term >= :from AND term < :to
		ORDER BY term LIMIT :limit`, sql.Named("from", from), sql.Named("to", to), sql.Named("limit", s.bounds.expansions+1))
	if err != nil {
		return "", false, err
	}
	defer rows.Close()
	var terms []string
	for rows.Next() {
		var term string
		if err := rows.Scan(&term); err != nil {
			return "", false, err
		}
		terms = append(terms, `"`+strings.ReplaceAll(term, `"`, `""`)+`"`)
	}
	if err := rows.Err(); err != nil || len(terms) > s.bounds.expansions {
		return "", false, err
	}
	if len(terms) > 1 {
		return "(" + strings.Join(terms, " OR ") + ")", true, nil
	}
	return strings.Join(terms, ""), true, nil
}

// ftsPhrases quotes each word as an FTS5 phrase, the last one as a prefix.
//
// FTS5 has a query language of its own (AND, OR, NOT, NEAR, "phrases",
// prefix*, column:filters, parentheses), and text passed to MATCH as it is
// would be parsed in it: an unbalanced quote or a stray "-" is a syntax
// error. So each word goes in double quotes, with a quote inside doubled:
// FTS5 then reads it as a plain phrase, and its tokenizer splits it the same
// way it split the tutorials ("c++" searches for c, "don't" for the phrase
// don t).
func ftsPhrases(words []string) []string {
	phrases := make([]string, len(words))
	for i, w := range words {
		phrases[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	if len(phrases) > 0 {
		phrases[len(phrases)-1] += "*"
	}
	return phrases
}
