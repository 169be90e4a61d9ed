// The tests of what a save hands on, and keeps when it fails; that the
// times reach the database and survive a restart is tested in the root
// package.
package lastused

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSaveKeepsWhatAFailedSaveCouldNotWrite(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := New()
	u.Touch(1, t0)
	u.Touch(2, t0)
	u.Touch(1, t0.Add(time.Second)) // the newest use counts

	// A save that fails, while key 2 is used again.
	failed := errors.New("disk full")
	err := u.Save(context.Background(), func(_ context.Context, m map[int64]time.Time) error {
		u.Touch(2, t0.Add(time.Minute))
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("Save = %v, want the save's error", err)
	}

	var got map[int64]time.Time
	save := func(_ context.Context, m map[int64]time.Time) error { got = m; return nil }
	if err := u.Save(context.Background(), save); err != nil {
		t.Fatal(err)
	}
	want := map[int64]time.Time{1: t0.Add(time.Second), 2: t0.Add(time.Minute)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the next save (-want +got):\n%s", diff)
	}
	if err := u.Save(context.Background(), save); err != nil || len(got) != 0 {
		t.Errorf("a save after a good one handed on %v (err %v), want nothing", got, err)
	}
}
