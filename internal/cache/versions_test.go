package cache

// These tests hold Versions to its promise: Latest never goes back.

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Latest is the newest version any Read saw: a Read that returns an older
// one (it began before a newer one finished) does not take Latest back,
// and a failed Read changes nothing.
func TestVersionsLatestIsTheNewestRead(t *testing.T) {
	ctx := context.Background()
	readings := []struct {
		n   int64
		err error
	}{{3, nil}, {5, nil}, {4, nil}, {0, errors.New("gone")}, {6, nil}}
	i := 0
	v := NewVersions(func(context.Context) (int64, error) {
		r := readings[i]
		i++
		return r.n, r.err
	})
	var got []int64
	for range readings {
		v.Read(ctx)
		latest, _ := v.Latest(ctx)
		got = append(got, latest)
	}
	if diff := cmp.Diff([]int64{3, 5, 5, 5, 6}, got); diff != "" {
		t.Errorf("Latest after each Read (-want +got):\n%s", diff)
	}
}
