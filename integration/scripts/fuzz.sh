#!/usr/bin/env bash
# Runs every native Go fuzz target in the module for a bounded time each
# (FUZZTIME, default 10s). Seeds are checked in under each package's
# testdata/fuzz and always run as plain tests too.
set -euo pipefail
cd "$(dirname "$0")/../.."
t=${FUZZTIME:-10s}
n=0
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $f ($t)"
    go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg" >/tmp/fuzz-$$.log 2>&1 || { cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log; exit 1; }
    n=$((n+1))
  done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: $n targets, no failure"
