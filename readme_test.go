package main

// These tests hold the README to the program: its curl lines run as
// written, and it carries no figures that rot.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeCurlExamples runs the curl lines of the README's "Five minutes
// with curl", as written, against a real server, so that the first thing a
// new user tries cannot silently stop working.
func TestReadmeCurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile("(?s)## Five minutes with curl.*?```sh\n(.*?)```").FindSubmatch(readme)
	if section == nil {
		t.Fatal("README has no curl block under 'Five minutes with curl'")
	}
	var commands []string
	for _, cmd := range strings.Split(strings.ReplaceAll(string(section[1]), "\\\n", ""), "\n") {
		if strings.HasPrefix(cmd, "curl ") {
			commands = append(commands, cmd)
		}
	}
	if len(commands) < 7 {
		t.Fatalf("found %d curl commands, want one per route and healthz:\n%s", len(commands), section[1])
	}

	db := filepath.Join(t.TempDir(), "t.db")
	key, _, err := runCommand(t, "keys", "create", "-name", "me", "-db", db)
	if err != nil {
		t.Fatal(err)
	}
	key = strings.TrimSpace(key)
	s := startServe(t, db)
	for _, cmd := range commands {
		cmd = strings.ReplaceAll(cmd, "http://localhost:8080", s.url)
		// -s quiets progress, -f fails on a 4xx or 5xx: each line must succeed.
		sh := exec.Command("sh", "-c", strings.Replace(cmd, "curl ", "curl -sf ", 1))
		sh.Env = append(os.Environ(), "KEY="+key)
		if out, err := sh.CombinedOutput(); err != nil {
			t.Errorf("%s\n%v: %s", cmd, err, out)
		}
	}
}

// TestReadmeHoldsNoFiguresThatRot keeps out of the README what changes with
// every commit and no test keeps true: a binary's size in bytes. Such
// figures belong in BENCHMARKS.md, with their date.
func TestReadmeHoldsNoFiguresThatRot(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if sizes := regexp.MustCompile(`\d{1,3}(,\d{3}){2,} bytes`).FindAll(readme, -1); len(sizes) > 0 {
		t.Errorf("README.md gives sizes in bytes, which rot with every commit: %q", sizes)
	}
}
