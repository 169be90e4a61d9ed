package client_test

// This test calls the real server through the generated client.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oapi-codegen/nullable"

	"tutorials/examples/client"
)

// TestGeneratedClient calls the real server, built from this repository,
// through the generated client, as a user of the API would: if the document
// and the server disagree, or the client cannot say something the API
// needs (a null), this fails.
func TestGeneratedClient(t *testing.T) {
	api := startServer(t)
	ctx := t.Context()

	t.Run("tutorial_lifecycle", func(t *testing.T) {
		// Create, with every writable field, so that each one makes the round trip.
		published := time.Date(2026, 11, 24, 22, 17, 33, 0, time.FixedZone("", 3600))
		created, err := api.CreateTutorialWithResponse(ctx, client.TutorialWhole{
			Title:         "Flask Authentication",
			Slug:          "flask-authentication",
			Excerpt:       ptr("Sessions, hashing and login flows."),
			Content:       ptr("# Sessions\n\nA cookie names a row on the server."),
			Category:      ptr("backend"),
			Difficulty:    ptr(client.Intermediate),
			EstimatedTime: nullable.NewNullableWithValue(12),
			PublishedAt:   &published,
		})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if created.JSON201 == nil {
			t.Fatalf("create: %s, want 201: %s", created.Status(), created.Body)
		}
		tut := created.JSON201.Data // what the server stored, with the fields it sets
		want := envelope(http.StatusCreated, client.Tutorial{
			Id:            tut.Id,
			Title:         "Flask Authentication",
			Slug:          "flask-authentication",
			Excerpt:       "Sessions, hashing and login flows.",
			Content:       "# Sessions\n\nA cookie names a row on the server.",
			Category:      "backend",
			Difficulty:    client.Intermediate,
			EstimatedTime: nullable.NewNullableWithValue(12),
			PublishedAt:   published.UTC(),
			CreatedAt:     tut.CreatedAt,
			UpdatedAt:     tut.UpdatedAt,
		})
		if diff := cmp.Diff(want, *created.JSON201, readable); diff != "" {
			t.Errorf("create: envelope (-want +got):\n%s", diff)
		}
		if got, want := deref(created.Headers201.Location), "/api/v1/tutorials/flask-authentication"; got != want {
			t.Errorf("create: Location %q, want %q", got, want)
		}

		// List: the one tutorial, without its content.
		list, err := api.ListTutorialsWithResponse(ctx, &client.ListTutorialsParams{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if list.JSON200 == nil {
			t.Fatalf("list: %s, want 200: %s", list.Status(), list.Body)
		}
		wantPage := client.TutorialPageEnvelope{
			Data: client.TutorialPage{
				Tutorials: []client.TutorialSummary{summary(tut)},
				Page:      1, PerPage: 20, Total: 1, TotalPages: 1, TotalRelation: client.Eq,
			},
			Error:  nullable.NewNullNullable[any](),
			Status: http.StatusOK,
		}
		if diff := cmp.Diff(wantPage, *list.JSON200, readable); diff != "" {
			t.Errorf("list: envelope (-want +got):\n%s", diff)
		}

		// Get: the tutorial as created.
		if diff := cmp.Diff(envelope(http.StatusOK, tut), getTutorial(t, api, tut.Slug), readable); diff != "" {
			t.Errorf("get: envelope (-want +got):\n%s", diff)
		}

		// Patch estimated_time to null: the reason for nullable-type. With
		// a plain *int and omitempty the client would send {} and the
		// server would rightly keep 12.
		patched, err := api.PatchTutorialWithResponse(ctx, tut.Slug, nil, client.TutorialFields{
			EstimatedTime: nullable.NewNullNullable[int](),
		})
		if err != nil {
			t.Fatalf("patch: %v", err)
		}
		if patched.JSON200 == nil {
			t.Fatalf("patch: %s, want 200: %s", patched.Status(), patched.Body)
		}
		cleared := tut
		cleared.EstimatedTime = nullable.NewNullNullable[int]()
		cleared.UpdatedAt = patched.JSON200.Data.UpdatedAt
		if diff := cmp.Diff(envelope(http.StatusOK, cleared), *patched.JSON200, readable); diff != "" {
			t.Errorf("patch: envelope (-want +got):\n%s", diff)
		}
		// The answer to the PATCH could be right while the store is not:
		// read it back.
		if diff := cmp.Diff(envelope(http.StatusOK, cleared), getTutorial(t, api, tut.Slug), readable); diff != "" {
			t.Errorf("get after patch: envelope (-want +got):\n%s", diff)
		}

		// Delete: 204, and then it is gone.
		deleted, err := api.DeleteTutorialWithResponse(ctx, tut.Slug, nil)
		if err != nil {
			t.Fatalf("delete: %v", err)
		}
		if deleted.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %s, want 204: %s", deleted.Status(), deleted.Body)
		}
		gone, err := api.GetTutorialWithResponse(ctx, tut.Slug, nil)
		if err != nil {
			t.Fatalf("get after delete: %v", err)
		}
		if diff := cmp.Diff(errorEnvelope(http.StatusNotFound, "Tutorial not found"), deref(gone.JSON404), readable); diff != "" {
			t.Errorf("get after delete: %s; envelope (-want +got):\n%s", gone.Status(), diff)
		}
	})

	t.Run("duplicate_slug_is_409", func(t *testing.T) {
		body := client.TutorialWhole{Title: "Go Generics", Slug: "go-generics"}
		first, err := api.CreateTutorialWithResponse(ctx, body)
		if err != nil {
			t.Fatalf("first create: %v", err)
		}
		if first.StatusCode() != http.StatusCreated {
			t.Fatalf("first create: %s, want 201: %s", first.Status(), first.Body)
		}
		second, err := api.CreateTutorialWithResponse(ctx, body)
		if err != nil {
			t.Fatalf("second create: %v", err)
		}
		if second.StatusCode() != http.StatusConflict {
			t.Fatalf("second create: %s, want 409: %s", second.Status(), second.Body)
		}
		if diff := cmp.Diff(errorEnvelope(http.StatusConflict, "Slug already exists"), deref(second.JSON409), readable); diff != "" {
			t.Errorf("second create: envelope (-want +got):\n%s", diff)
		}
	})
}

// readable shows a nullable field in a diff as JSON has it (12, null, or
// absent) rather than as the map it is inside.
var readable = cmp.Options{
	cmp.Transformer("JSON", nullableJSON[int]),
	cmp.Transformer("JSON", nullableJSON[any]),
}

func nullableJSON[T any](n nullable.Nullable[T]) string {
	switch {
	case !n.IsSpecified():
		return "(absent)"
	case n.IsNull():
		return "null"
	default:
		return fmt.Sprint(n.MustGet())
	}
}

// getTutorial fetches one tutorial and returns its envelope, failing the
// test unless the answer is a 200.
func getTutorial(t *testing.T, api *client.ClientWithResponses, slug string) client.TutorialEnvelope {
	t.Helper()
	res, err := api.GetTutorialWithResponse(t.Context(), slug, nil)
	if err != nil {
		t.Fatalf("get %s: %v", slug, err)
	}
	if res.JSON200 == nil {
		t.Fatalf("get %s: %s, want 200: %s", slug, res.Status(), res.Body)
	}
	return *res.JSON200
}

// envelope is the body of a success: the tutorial, a null error and the status.
func envelope(status int, t client.Tutorial) client.TutorialEnvelope {
	return client.TutorialEnvelope{Data: t, Error: nullable.NewNullNullable[any](), Status: status}
}

// errorEnvelope is the body of a failure: null data, the message and the status.
func errorEnvelope(status int, message string) client.ErrorEnvelope {
	return client.ErrorEnvelope{Data: nullable.NewNullNullable[any](), Error: message, Status: status}
}

// summary is a tutorial as the list shows it: every field but content.
func summary(t client.Tutorial) client.TutorialSummary {
	return client.TutorialSummary{
		Id: t.Id, Title: t.Title, Slug: t.Slug, Excerpt: t.Excerpt,
		Category: t.Category, Difficulty: t.Difficulty, EstimatedTime: t.EstimatedTime,
		PublishedAt: t.PublishedAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

func ptr[T any](v T) *T { return &v }

// deref is the value p points at, or T's zero value when p is nil (an
// answer the client could not match to the status the test expects).
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// listeningLine is the log line the server writes once its port is bound.
var listeningLine = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer builds the server from the repository root, gives a fresh
// database a write key, starts the server on a port the system chooses,
// and returns a generated client that sends the key. The server gets
// SIGTERM when the test ends, and must then stop cleanly.
func startServer(t *testing.T) *client.ClientWithResponses {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tutorials")
	db := filepath.Join(dir, "t.db")

	// The server is another module (the repository root, two levels up):
	// go build runs there, so that this module's go.mod stays out of it.
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of the server: %v\n%s", err, out)
	}

	out, err := exec.Command(bin, "keys", "create", "-name", "smoke", "-db", db).Output()
	if err != nil {
		t.Fatalf("keys create: %v", err)
	}
	key := strings.TrimSpace(string(out))
	if !strings.HasPrefix(key, "tut_") {
		t.Fatalf("keys create printed %q, not a key", key)
	}

	serve := exec.Command(bin, "serve", "-addr", "127.0.0.1:0", "-db", db, "-rate", "0")
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	var logs serverLog
	addrs := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		// Read to the end: a server whose stderr is not drained blocks on
		// its next log line.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.add(sc.Text())
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- m[1]
			}
		}
		exited <- serve.Wait()
	}()
	t.Cleanup(func() {
		if err := serve.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM: %v", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("after SIGTERM the server exited with %v, want 0; its log:\n%s", err, &logs)
			}
		case <-time.After(20 * time.Second):
			serve.Process.Kill()
			<-exited
			t.Errorf("the server did not stop within 20 s of SIGTERM; its log:\n%s", &logs)
		}
	})

	var addr string
	select {
	case addr = <-addrs:
	case err := <-exited:
		exited <- err // for the cleanup, which waits on it too
		t.Fatalf("the server exited before it listened (%v); its log:\n%s", err, &logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not log where it listens within 30 s; its log:\n%s", &logs)
	}

	api, err := client.NewClientWithResponses("http://"+addr,
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+key)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	// The listener is bound before the line is logged, so the first
	// request is answered; /healthz also proves the database answers.
	health, err := api.GetHealthWithResponse(t.Context())
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	if health.JSON200 == nil || health.JSON200.Data.Status != "ok" {
		t.Fatalf("healthz: %s, want 200 and status ok: %s", health.Status(), health.Body)
	}
	return api
}

// serverLog keeps the server's stderr, to show when a test fails.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
}

func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
