#!/usr/bin/env bash
# CI: the generated Go client in examples/client (issue 14), a module of its
# own. Checks that client.gen.go is what go generate makes from today's
# openapi.json (so the committed client cannot drift from the document),
# holds the module to the same vet and staticcheck as the server, and runs
# its smoke test, which builds the server from this tree and calls it
# through the client. Called from .ci/run; runs on its own too.
set -euo pipefail
cd "$(dirname "$0")/../examples/client"

go mod download

echo "--- examples/client: client.gen.go matches openapi.json"
committed=$(mktemp)
trap 'rm -f "$committed"' EXIT
cp client.gen.go "$committed"
go generate ./...
if ! diff -u "$committed" client.gen.go; then
  echo "client.gen.go is not what go generate makes from openapi.json."
  echo "It has been regenerated here: commit it with the change to openapi.json."
  exit 1
fi

echo "--- examples/client: gofmt, go vet, staticcheck"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"
  echo "$unformatted"
  exit 1
fi
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# -count=1: the test runs a server built from the repository root, which go
# test's result cache does not see; a cached pass could hide a server change.
echo "--- examples/client: smoke test against the real server"
go test -count=1 ./...
