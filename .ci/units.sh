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
