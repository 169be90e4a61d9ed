-- The schema of tutorials, as numbered migrations.
--
-- Each "-- migration N: why" line starts migration N. At start the store runs,
-- in order and each in its own transaction, every migration whose number is
-- above the database's PRAGMA user_version, then sets user_version to N. So a
-- new database gets them all and an existing one only what it lacks. Never
-- edit a migration that has shipped: add a new one below.
--
-- Timestamps are TEXT in the fixed-width form YYYY-MM-DDTHH:MM:SSZ, so that
-- the sqlite3 shell shows them readably and text order is time order.

-- migration 1: tutorials and API keys
CREATE TABLE tutorials (
    id             INTEGER PRIMARY KEY,
    title          TEXT    NOT NULL,
    slug           TEXT    NOT NULL UNIQUE,
    excerpt        TEXT    NOT NULL DEFAULT '',
    content        TEXT    NOT NULL DEFAULT '',
    category       TEXT    NOT NULL DEFAULT 'backend',
    difficulty     TEXT    NOT NULL DEFAULT 'beginner'
                           CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    estimated_time INTEGER CHECK (estimated_time BETWEEN 0 AND 100000),
    published_at   TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);

-- The list is ordered by (sort column, id DESC) so that ties never reorder
-- between pages. SQLite reads an index backwards as easily as forwards, so
-- (published_at, id) serves "-published_at" and the "_desc" twins serve the
-- ascending sorts, where id still runs descending.
CREATE INDEX tutorials_published      ON tutorials (published_at, id);
CREATE INDEX tutorials_published_desc ON tutorials (published_at, id DESC);
CREATE INDEX tutorials_title          ON tutorials (title, id);
CREATE INDEX tutorials_title_desc     ON tutorials (title, id DESC);
-- The filters, with the default order behind them.
CREATE INDEX tutorials_category   ON tutorials (category, published_at, id);
CREATE INDEX tutorials_difficulty ON tutorials (difficulty, published_at, id);

-- A key itself is never stored: only the SHA-256 of it, to look it up, and
-- its first characters, so that a person can tell keys apart in a listing.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    scope        TEXT    NOT NULL DEFAULT 'write' CHECK (scope IN ('read', 'write')),
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at   TEXT    NOT NULL,
    last_used_at TEXT
);

-- migration 2: full-text search over title, excerpt and content
-- An external-content FTS5 table: it stores only the index, and reads the
-- text itself from tutorials by rowid, so no tutorial is stored twice. The
-- price is that nothing keeps the index in step but the triggers below: every
-- change to tutorials goes through them, in the same transaction. An update
-- removes the old text from the index ('delete' needs the exact old values)
-- and adds the new.
-- unicode61 with remove_diacritics 2 lets "uber" find "Über".
CREATE VIRTUAL TABLE tutorials_fts USING fts5(
    title, excerpt, content,
    content = 'tutorials', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER tutorials_fts_insert AFTER INSERT ON tutorials BEGIN
    INSERT INTO tutorials_fts (rowid, title, excerpt, content)
    VALUES (new.id, new.title, new.excerpt, new.content);
END;

CREATE TRIGGER tutorials_fts_delete AFTER DELETE ON tutorials BEGIN
    INSERT INTO tutorials_fts (tutorials_fts, rowid, title, excerpt, content)
    VALUES ('delete', old.id, old.title, old.excerpt, old.content);
END;

CREATE TRIGGER tutorials_fts_update AFTER UPDATE OF title, excerpt, content ON tutorials BEGIN
    INSERT INTO tutorials_fts (tutorials_fts, rowid, title, excerpt, content)
    VALUES ('delete', old.id, old.title, old.excerpt, old.content);
    INSERT INTO tutorials_fts (rowid, title, excerpt, content)
    VALUES (new.id, new.title, new.excerpt, new.content);
END;

-- Index the tutorials a database of the previous release already holds.
INSERT INTO tutorials_fts (tutorials_fts) VALUES ('rebuild');

-- migration 3: the number of tutorials per category and difficulty, kept by triggers
-- The list answers with a total. COUNT(*) reads a whole index, a million
-- entries at a million tutorials, on every page; this table holds the same
-- numbers, kept exact by the triggers below in the transaction of each write,
-- so the total costs a few rows whatever the size of the library. Any filter
-- of the list on category or difficulty is a sum of its rows.
CREATE TABLE tutorial_counts (
    category   TEXT    NOT NULL,
    difficulty TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (category, difficulty)
) WITHOUT ROWID;

INSERT INTO tutorial_counts (category, difficulty, n)
    SELECT category, difficulty, COUNT(*) FROM tutorials GROUP BY category, difficulty;

CREATE TRIGGER tutorials_count_insert AFTER INSERT ON tutorials BEGIN
    INSERT INTO tutorial_counts (category, difficulty, n) VALUES (NEW.category, NEW.difficulty, 1)
        ON CONFLICT (category, difficulty) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tutorials_count_delete AFTER DELETE ON tutorials BEGIN
    UPDATE tutorial_counts SET n = n - 1
        WHERE category = OLD.category AND difficulty = OLD.difficulty;
    DELETE FROM tutorial_counts
        WHERE category = OLD.category AND difficulty = OLD.difficulty AND n = 0;
END;

CREATE TRIGGER tutorials_count_update AFTER UPDATE OF category, difficulty ON tutorials
    WHEN OLD.category IS NOT NEW.category OR OLD.difficulty IS NOT NEW.difficulty
BEGIN
    UPDATE tutorial_counts SET n = n - 1
        WHERE category = OLD.category AND difficulty = OLD.difficulty;
    DELETE FROM tutorial_counts
        WHERE category = OLD.category AND difficulty = OLD.difficulty AND n = 0;
    INSERT INTO tutorial_counts (category, difficulty, n) VALUES (NEW.category, NEW.difficulty, 1)
        ON CONFLICT (category, difficulty) DO UPDATE SET n = n + 1;
END;

-- migration 4: ids never reused, and a version per tutorial for If-Match
-- AUTOINCREMENT makes SQLite remember the largest id it ever gave, so a
-- deleted tutorial's id is never given again: a client that kept id 7 never
-- finds another tutorial under it. version counts the changes to a row; the
-- API's ETag is made of id and version, and a conditional write is an UPDATE
-- ... WHERE version = ?, so of two editors who read the same version only the
-- first to write wins.
--
-- SQLite cannot add AUTOINCREMENT to a table, so the table is built again as
-- SQLite's documentation says (create, copy, drop, rename) with every id
-- kept. Ids were kept, so the search index, which points at them, stays
-- right as it is; tutorial_counts is untouched. Dropping the old table drops
-- its indexes and triggers, and they are made again below as they were. No
-- table refers to tutorials by a foreign key, so with foreign_keys on the
-- drop deletes nothing elsewhere. An id deleted before this migration and
-- above every id left may be given once more: nothing recorded it.
CREATE TABLE tutorials_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    title          TEXT    NOT NULL,
    slug           TEXT    NOT NULL UNIQUE,
    excerpt        TEXT    NOT NULL DEFAULT '',
    content        TEXT    NOT NULL DEFAULT '',
    category       TEXT    NOT NULL DEFAULT 'backend',
    difficulty     TEXT    NOT NULL DEFAULT 'beginner'
                           CHECK (difficulty IN ('beginner', 'intermediate', 'advanced')),
    estimated_time INTEGER CHECK (estimated_time BETWEEN 0 AND 100000),
    published_at   TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1
);

INSERT INTO tutorials_new
    (id, title, slug, excerpt, content, category, difficulty, estimated_time,
     published_at, created_at, updated_at)
    SELECT id, title, slug, excerpt, content, category, difficulty, estimated_time,
           published_at, created_at, updated_at
    FROM tutorials;

DROP TABLE tutorials;
ALTER TABLE tutorials_new RENAME TO tutorials;

-- The indexes of migration 1.
CREATE INDEX tutorials_published      ON tutorials (published_at, id);
CREATE INDEX tutorials_published_desc ON tutorials (published_at, id DESC);
CREATE INDEX tutorials_title          ON tutorials (title, id);
CREATE INDEX tutorials_title_desc     ON tutorials (title, id DESC);
CREATE INDEX tutorials_category       ON tutorials (category, published_at, id);
CREATE INDEX tutorials_difficulty     ON tutorials (difficulty, published_at, id);

-- The triggers of migration 2, which keep the search index in step.
CREATE TRIGGER tutorials_fts_insert AFTER INSERT ON tutorials BEGIN
    INSERT INTO tutorials_fts (rowid, title, excerpt, content)
    VALUES (new.id, new.title, new.excerpt, new.content);
END;

CREATE TRIGGER tutorials_fts_delete AFTER DELETE ON tutorials BEGIN
    INSERT INTO tutorials_fts (tutorials_fts, rowid, title, excerpt, content)
    VALUES ('delete', old.id, old.title, old.excerpt, old.content);
END;

CREATE TRIGGER tutorials_fts_update AFTER UPDATE OF title, excerpt, content ON tutorials BEGIN
    INSERT INTO tutorials_fts (tutorials_fts, rowid, title, excerpt, content)
    VALUES ('delete', old.id, old.title, old.excerpt, old.content);
    INSERT INTO tutorials_fts (rowid, title, excerpt, content)
    VALUES (new.id, new.title, new.excerpt, new.content);
END;

-- The triggers of migration 3, which keep tutorial_counts exact.
CREATE TRIGGER tutorials_count_insert AFTER INSERT ON tutorials BEGIN
    INSERT INTO tutorial_counts (category, difficulty, n) VALUES (NEW.category, NEW.difficulty, 1)
        ON CONFLICT (category, difficulty) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tutorials_count_delete AFTER DELETE ON tutorials BEGIN
    UPDATE tutorial_counts SET n = n - 1
        WHERE category = OLD.category AND difficulty = OLD.difficulty;
    DELETE FROM tutorial_counts
        WHERE category = OLD.category AND difficulty = OLD.difficulty AND n = 0;
END;

CREATE TRIGGER tutorials_count_update AFTER UPDATE OF category, difficulty ON tutorials
    WHEN OLD.category IS NOT NEW.category OR OLD.difficulty IS NOT NEW.difficulty
BEGIN
    UPDATE tutorial_counts SET n = n - 1
        WHERE category = OLD.category AND difficulty = OLD.difficulty;
    DELETE FROM tutorial_counts
        WHERE category = OLD.category AND difficulty = OLD.difficulty AND n = 0;
    INSERT INTO tutorial_counts (category, difficulty, n) VALUES (NEW.category, NEW.difficulty, 1)
        ON CONFLICT (category, difficulty) DO UPDATE SET n = n + 1;
END;

-- The store's UPDATEs move version themselves, so that their RETURNING
-- shows the new one. This moves it after any other change, such as one made
-- with the sqlite3 shell, which knows nothing of versions: the ETag must
-- change whenever the tutorial does. (It sets version alone, so it wakes
-- none of the triggers above, nor itself.)
CREATE TRIGGER tutorials_version AFTER UPDATE ON tutorials
    WHEN NEW.version = OLD.version
BEGIN
    UPDATE tutorials SET version = OLD.version + 1 WHERE id = NEW.id;
END;

-- migration 5: a key may carry its own rate limit
-- NULL in both: the key follows the server's -rate and -burst. A rate of 0
-- is no limit at all for the key (its burst is then 0, and unused). The two
-- are set together or not at all.
ALTER TABLE api_keys ADD COLUMN rate  REAL    CHECK (rate >= 0);
ALTER TABLE api_keys ADD COLUMN burst INTEGER CHECK (burst >= 0 AND (rate IS NULL) = (burst IS NULL));

-- migration 6: an index for each filter with each sort
-- A page of the list reads its index from where the page starts. Migration
-- 1 gave each sort an index, and the filters one each in the default order;
-- any other combination walked one of them and tested every row it met, or
-- sorted every row of the filter: at a million tutorials a deep page, or a
-- small category in title order, read most of the table. With an index per
-- filter (category, difficulty, both) and sort, every list reads only the
-- rows it skips and the rows it returns. The "_desc" twins serve the
-- ascending sorts, as in migration 1.
CREATE INDEX tutorials_category_desc         ON tutorials (category, published_at, id DESC);
CREATE INDEX tutorials_category_title        ON tutorials (category, title, id);
CREATE INDEX tutorials_category_title_desc   ON tutorials (category, title, id DESC);
CREATE INDEX tutorials_difficulty_desc       ON tutorials (difficulty, published_at, id DESC);
CREATE INDEX tutorials_difficulty_title      ON tutorials (difficulty, title, id);
CREATE INDEX tutorials_difficulty_title_desc ON tutorials (difficulty, title, id DESC);
CREATE INDEX tutorials_both                  ON tutorials (category, difficulty, published_at, id);
CREATE INDEX tutorials_both_desc             ON tutorials (category, difficulty, published_at, id DESC);
CREATE INDEX tutorials_both_title            ON tutorials (category, difficulty, title, id);
CREATE INDEX tutorials_both_title_desc       ON tutorials (category, difficulty, title, id DESC);

-- migration 7: prefix indexes for the first one and two letters of a word
-- The last word of a search matches as a prefix. For a prefix it has no
-- index of, FTS5 merges the lists of every word that starts with it before
-- it returns the first match: at a million tutorials, "a" or "t" matches
-- most of them and costs seconds. prefix='1 2' keeps, beside each word, its
-- first letter and its first two as words of their own, so such a prefix is
-- read like any word, newest match first, as far as the page needs.
--
-- FTS5 cannot add a prefix index to an index that exists: the table is made
-- again and filled from tutorials, as migration 2 did. The triggers that
-- keep it in step (migration 4) name the table, not its options, and stay
-- as they are. A rebuild leaves the index in many pieces that every later
-- write would help merge, a little each, for a long while; 'optimize' merges
-- them at once.
DROP TABLE tutorials_fts;
CREATE VIRTUAL TABLE tutorials_fts USING fts5(
    title, excerpt, content,
    content = 'tutorials', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2'
);
INSERT INTO tutorials_fts (tutorials_fts) VALUES ('rebuild');
INSERT INTO tutorials_fts (tutorials_fts) VALUES ('optimize');

-- migration 8: the words of the search index, for the prefix of a search's last word
-- For a prefix it has no prefix index of, FTS5 merges the lists of every
-- word that starts with it, whole, before it returns the first match: at a
-- million tutorials "kube" or "tutorial" costs as much as reading every
-- tutorial that holds "kubernetes". Asked for the same words by name
-- ("kubernetes" OR "kubectl"), it reads them lazily, newest first, as far
-- as the page needs. So the store looks the words up in tutorials_terms,
-- every word the index holds, by the prefix. (FTS5 has no list of its
-- words that is cheap to read: fts5vocab counts every match of each word it
-- lists.)
--
-- tutorials_terms must hold every word of the index before anyone can
-- search for it, including the words of tutorials written with the sqlite3
-- shell. So the triggers below note the id of each new or changed text in
-- tutorials_unfolded_ids, and the store's writer folds their words into
-- tutorials_terms at the end of each batch of writes (see sqlite_list.go):
-- it indexes their text in tutorials_unfolded, an FTS5 table that stores no
-- text (content='') and no positions (detail=none), reads its words, and
-- empties it. Once a batch, not once a write: FTS5 writes its index out at
-- the end of every statement. A search asks tutorials_terms for the words
-- of a prefix only while no id waits; until then, FTS5 merges the prefix's
-- lists as before. A word that leaves the index stays in tutorials_terms:
-- looked up, it matches nothing.
CREATE TABLE tutorials_terms (term TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE tutorials_unfolded_ids (id INTEGER PRIMARY KEY);

CREATE VIRTUAL TABLE tutorials_unfolded USING fts5(
    title, excerpt, content,
    content = '', detail = none,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The words of each index, as FTS5 lists them.
CREATE VIRTUAL TABLE tutorials_fts_terms      USING fts5vocab(tutorials_fts, row);
CREATE VIRTUAL TABLE tutorials_unfolded_terms USING fts5vocab(tutorials_unfolded, row);

CREATE TRIGGER tutorials_unfolded_insert AFTER INSERT ON tutorials BEGIN
    INSERT OR IGNORE INTO tutorials_unfolded_ids (id) VALUES (new.id);
END;

CREATE TRIGGER tutorials_unfolded_update AFTER UPDATE OF title, excerpt, content ON tutorials BEGIN
    INSERT OR IGNORE INTO tutorials_unfolded_ids (id) VALUES (new.id);
END;

INSERT INTO tutorials_terms (term) SELECT term FROM tutorials_fts_terms;
