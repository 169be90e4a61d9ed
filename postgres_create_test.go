package main

// This test holds the PostgreSQL engine's group commit to how it makes a
// batch; TestCreatesAtOnceGetTheirOwnAnswers tests its answers.

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCreateBatchTaking checks how the group commit of postgres_create.go
// makes a batch of the creates waiting, which TestCreatesAtOnceGetTheirOwnAnswers
// cannot arrange on purpose: oldest first, at most createBatch of them,
// never two of one slug (each row returned must answer one create), and
// never a create that writes batches itself, but for the writer taking it.
func TestCreateBatchTaking(t *testing.T) {
	create := func(slug string, writer bool) *pgCreate {
		return &pgCreate{in: TutorialInput{Slug: slug}, writer: writer}
	}
	slugs := func(cs []*pgCreate) []string {
		var s []string
		for _, c := range cs {
			s = append(s, c.in.Slug)
		}
		return s
	}
	me := create("mine", true)
	s := &pgCreates{queue: []*pgCreate{create("a", false), create("b", true), create("a", false), me, create("c", false)}}
	for i := range createBatch + 2 {
		s.queue = append(s.queue, create(fmt.Sprint("n", i), false))
	}
	batch := s.take(me)

	var want []string
	want = append(want, "a", "mine", "c")
	for i := range createBatch - 3 {
		want = append(want, fmt.Sprint("n", i))
	}
	if diff := cmp.Diff(want, slugs(batch)); diff != "" {
		t.Errorf("the batch taken (-want +got):\n%s", diff)
	}
	wantLeft := []string{"b", "a", fmt.Sprint("n", createBatch-3), fmt.Sprint("n", createBatch-2),
		fmt.Sprint("n", createBatch-1), fmt.Sprint("n", createBatch), fmt.Sprint("n", createBatch+1)}
	if diff := cmp.Diff(wantLeft, slugs(s.queue)); diff != "" {
		t.Errorf("left waiting (-want +got):\n%s", diff)
	}
}
