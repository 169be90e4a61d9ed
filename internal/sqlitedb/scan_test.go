package sqlitedb

// The scan pool held to its promise: reads that may take long never hold
// the connections lookups need (see scan.go).

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestScansThatHoldEveryScanConnectionLeaveReadsFree(t *testing.T) {
	db, _ := openTest(t, Options{ScanConns: 2})
	ctx := context.Background()
	if err := db.Write(ctx, insert("a note")); err != nil {
		t.Fatal(err)
	}
	// Two scans hold the scan pool until the test lets them go.
	release := make(chan struct{})
	holding := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			err := db.ScanTx(ctx, func(tx *Tx) error {
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM notes").Scan(&n); err != nil {
					return err
				}
				holding <- struct{}{}
				<-release
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	<-holding
	<-holding
	defer wg.Wait()
	defer close(release)

	// A lookup and a read transaction answer at once.
	var body string
	if err := db.QueryRow(ctx, "SELECT body FROM notes").Scan(&body); err != nil || body != "a note" {
		t.Errorf("lookup while the scans run: %q, %v", body, err)
	}
	if err := db.ReadTx(ctx, func(tx *Tx) error { return nil }); err != nil {
		t.Errorf("read transaction while the scans run: %v", err)
	}
	// A third scan waits for a connection, and gives up when its context
	// ends: the caller's deadline covers the wait.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- db.ScanTx(wctx, func(tx *Tx) error { return nil }) }()
	for deadline := time.Now().Add(10 * time.Second); db.scan.Stats().WaitCount == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the third scan never waited for a connection")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("a scan waiting for a connection when its context ended: %v, want context.Canceled", err)
	}
}
