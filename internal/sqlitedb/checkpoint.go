package sqlitedb

// Checkpoints: copying the WAL into the database file, beside the writes
// rather than inside one of them (wal_autocheckpoint is off: see open).

import "time"

// checkpointEvery is how often checkpoints copies the WAL into the database
// file, unless Options say otherwise.
const checkpointEvery = time.Second

// walResetFrames is the length of the WAL, in frames (pages), past which the
// writer starts it over: 16,384 frames, 64 MiB at SQLite's default page size
// of 4 KiB.
const walResetFrames = 16384

// checkpoints copies what the WAL holds into the database file every
// checkpointEvery, on a connection of its own, so that no commit ever waits
// for that work. PASSIVE waits for no reader and no writer: what it cannot
// copy now, because a reader still needs it, the next round copies. A round
// that fails leaves the same work to the next one, so its error needs no
// other handling; and SQLite checkpoints all of the WAL anyway when the
// last connection closes.
//
// Copying is not enough under a steady stream of writes. SQLite starts the
// WAL over from its beginning only when a write begins after a checkpoint
// has copied every frame, and with a batch always being written that never
// happens: the WAL would grow without end. So a round that finds the WAL
// longer than walLimit copies once more (what came during the first copy)
// and asks commitBatches to checkpoint between two batches, when no write is
// under way; the next batch then starts the WAL over. (A RESTART checkpoint
// could do it from here, but it needs the write lock, which under such load
// it only gets by waiting for it, and then it waits for the readers too,
// holding every write up meanwhile.)
//
// A round that finds nothing written since the last one and everything
// copied is the start of a quiet spell: it empties the WAL file (TRUNCATE),
// so that an idle server's disk holds the database file alone, and lets go
// of the writer's page cache, which the next write reads back from the
// system's.
func (w *writer) checkpoints(stop <-chan struct{}, every time.Duration) {
	if every < 0 {
		return // a test runs the rounds itself
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			w.checkpointRound()
		}
	}
}

// checkpointRound is one round of checkpoints.
func (w *writer) checkpointRound() {
	var busy, frames, copied int
	err := w.checkpoint.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	switch {
	case err != nil:
	case frames > 0 && frames == copied && frames == w.lastFrames:
		w.checkpoint.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		w.db.write.Exec("PRAGMA shrink_memory")
	case frames > w.walLimit:
		w.checkpoint.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		w.walTooLong.Store(true)
	}
	w.lastFrames = frames
}
