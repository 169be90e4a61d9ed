#!/usr/bin/env bash
# CI: check the systemd units in deploy/ with systemd-analyze verify, which
# loads them as systemd would (every directive known and well formed, the
# commands executable) without a running systemd, so it works in a
# container. It cannot start the service: that needs systemd as PID 1.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null; then
  echo "--- installing systemd (for systemd-analyze)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify checks that ExecStart names an executable, and CI does not install
# into /usr/local/bin: the copies point at a fresh build instead, and are
# otherwise the files as shipped.
CGO_ENABLED=0 go build -o "$tmp/tutorials" .
units=(tutorials.service tutorials@.service tutorials-backup.service tutorials-backup.timer)
for u in "${units[@]}"; do
  sed "s#/usr/local/bin/tutorials#$tmp/tutorials#g" "deploy/$u" >"$tmp/$u"
done

# An unknown or misspelt directive is only a warning (exit 0), ignored by
# systemd at run time too, so any output at all fails the check.
cd "$tmp"
report=$(systemd-analyze verify "${units[@]}" 2>&1) || { echo "$report"; exit 1; }
if [ -n "$report" ]; then
  echo "systemd-analyze verify:"
  echo "$report"
  exit 1
fi
echo "systemd-analyze verify: ${units[*]} OK"
for u in tutorials.service tutorials-backup.service; do
  systemd-analyze security --offline=true "$u" 2>&1 | grep 'Overall exposure level'
done

# Run the backup unit's command line, as systemd would after turning %% into
# %, against a database in a stand-in for /var/lib/tutorials, to catch a
# flag in the wrong place or a quoting slip that verify cannot see.
state="$tmp/state"
mkdir -p "$state/backups"
"$tmp/tutorials" keys create -name ci -db "$state/tutorials.db" >/dev/null
cmdline=$(sed -n 's/^ExecStart=//p' "$tmp/tutorials-backup.service" | sed -e 's/%%/%/g' -e "s#/var/lib/tutorials#$state#g")
eval "$cmdline"
eval "$cmdline" # a week later, the same name: -force replaces it
want="$state/backups/tutorials-$(date +%a).db"
[ -s "$want" ] || { echo "the backup unit's command made no $want"; ls -la "$state/backups"; exit 1; }
echo "tutorials-backup.service's command line wrote backups/$(basename "$want")"

# tutorials.service's one capability, tried for real, since verify only
# reads it: as an unprivileged user holding only CAP_NET_BIND_SERVICE (what
# AmbientCapabilities gives the service), the binary serves HTTPS by itself
# on 443 and 80 (an ACME server that does not answer costs it one log
# line, not its start); without the capability it exits 1.
cd - >/dev/null
grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' deploy/tutorials.service &&
  grep -qx 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' deploy/tutorials.service &&
  ! grep -q '^PrivateUsers=yes' deploy/tutorials.service ||
  { echo "tutorials.service cannot bind 443: it needs CAP_NET_BIND_SERVICE, and no PrivateUsers"; exit 1; }
chmod 711 "$tmp"
mkdir "$tmp/bind" && chown 65534:65534 "$tmp/bind"
serve=("$tmp/tutorials" serve -db "$tmp/bind/t.db" -domain ci.tutorials.test -acme-directory https://127.0.0.1:1/dir
  -addr 127.0.0.1:443 -http-addr 127.0.0.1:80)
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if "${as_nobody[@]}" --bounding-set=-all --inh-caps=-all "${serve[@]}" 2>"$tmp/bind.log"; then
  echo "the binary served on 443 without the capability"; exit 1
fi
grep -q 'permission denied' "$tmp/bind.log" || { cat "$tmp/bind.log"; exit 1; }
"${as_nobody[@]}" --bounding-set=-all,+net_bind_service --inh-caps=+net_bind_service \
  --ambient-caps=+net_bind_service "${serve[@]}" 2>"$tmp/bind.log" &
pid=$!
for _ in $(seq 300); do grep -q 'msg=listening' "$tmp/bind.log" && break; sleep 0.1; done
kill "$pid"; wait "$pid" || true
grep -q 'msg=listening addr=127.0.0.1:443 https=ci.tutorials.test http_addr=127.0.0.1:80' "$tmp/bind.log" ||
  { echo "with CAP_NET_BIND_SERVICE alone the binary did not listen on 443 and 80:"; cat "$tmp/bind.log"; exit 1; }
echo "with CAP_NET_BIND_SERVICE alone, as nobody, the binary listens on 443 and 80"
