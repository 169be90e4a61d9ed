#!/usr/bin/env bash
# CI: the static binaries for the small machines people run this on, and a
# smoke test of the arm64 one under qemu-user. Called from .ci/run; runs on
# its own too. Needs Go, curl, and qemu-user-static (installed with apt-get
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
out=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$out"
}
trap cleanup EXIT

# build NAME GOARCH [GOARM]: CGO_ENABLED=0 makes a static binary (the SQLite
# driver is pure Go); -s -w drops the symbol table and DWARF, about a third
# of the size; -X keeps the version, which "tutorials version" prints.
build() {
  CGO_ENABLED=0 GOOS=linux GOARCH="$2" GOARM="${3:-}" \
    go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out/$1" .
  printf '%-24s %s bytes\n' "$1" "$(stat -c %s "$out/$1")"
}
echo "--- static builds of $version"
build tutorials-linux-amd64 amd64
build tutorials-linux-arm64 arm64
build tutorials-linux-armv7 arm 7
build tutorials-linux-armv6 arm 6

if ! command -v qemu-aarch64-static >/dev/null || ! command -v qemu-arm-static >/dev/null; then
  echo "--- installing qemu-user-static"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi

# want_version BINARY [RUNNER...]: the binary starts on its architecture
# and says which build it is.
want_version() {
  got=$("${@:2}" "$1" version)
  if [ "$got" != "tutorials $version" ]; then
    echo "$1 version: got '$got', want 'tutorials $version'"
    exit 1
  fi
  echo "$(basename "$1"): $got"
}
echo "--- the builds run (qemu-user)"
want_version "$out/tutorials-linux-amd64"
want_version "$out/tutorials-linux-arm64" qemu-aarch64-static
want_version "$out/tutorials-linux-armv7" qemu-arm-static
# arm1176 is the CPU of the Raspberry Pi 1 and Zero: an ARMv6 without the
# v7 instructions a GOARM=7 build may use.
want_version "$out/tutorials-linux-armv6" qemu-arm-static -cpu arm1176

echo "--- arm64 under qemu: key, serve, create, get"
arm64() { qemu-aarch64-static "$out/tutorials-linux-arm64" "$@"; }
db="$out/smoke.db"
key=$(arm64 keys create -name ci -db "$db")
# Started directly, not through the function, so that $! is the server
# itself (qemu passes signals on to the program it runs).
: >"$out/serve.log"
qemu-aarch64-static "$out/tutorials-linux-arm64" serve -db "$db" -addr 127.0.0.1:0 2>"$out/serve.log" &
server_pid=$!

# The server logs its address once it listens; -addr :0 lets the system
# pick a free port, so two CI jobs on one machine cannot collide.
addr=""
for _ in $(seq 1 300); do
  addr=$(sed -n 's/.*msg=listening addr=\([0-9.:]*\).*/\1/p' "$out/serve.log")
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$out/serve.log"; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { echo "the server did not start in 30 s"; cat "$out/serve.log"; exit 1; }

status=$(curl -sS -o "$out/created.json" -w '%{http_code}' -X POST "http://$addr/api/v1/tutorials" \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"title":"Hello from arm64","slug":"hello-arm64","content":"Runs under qemu."}')
[ "$status" = 201 ] || { echo "create: $status"; cat "$out/created.json"; exit 1; }
status=$(curl -sS -o "$out/got.json" -w '%{http_code}' "http://$addr/api/v1/tutorials/hello-arm64" \
  -H "Authorization: Bearer $key")
[ "$status" = 200 ] || { echo "get: $status"; cat "$out/got.json"; exit 1; }
grep -q '"title":"Hello from arm64"' "$out/got.json" || { echo "get returned:"; cat "$out/got.json"; exit 1; }
echo "create 201, get 200: $(cat "$out/got.json")"

# SIGTERM is how systemd stops it: the server must drain and exit 0.
kill -TERM "$server_pid"
if ! wait "$server_pid"; then echo "the server did not stop cleanly"; cat "$out/serve.log"; exit 1; fi
server_pid=""
grep -q 'msg=stopped' "$out/serve.log" || { echo "no 'stopped' in the log"; cat "$out/serve.log"; exit 1; }
echo "stopped cleanly on SIGTERM"
