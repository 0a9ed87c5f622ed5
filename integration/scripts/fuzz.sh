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
    # A found failure always writes its input ("Failing input written") and
    # fails the run. Go's fuzz coordinator can also end a run under load with
    # a bare "context deadline exceeded" and no input (workers stalled):
    # that says nothing about the code, so such a run is tried again, twice.
    tries=0
    until go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg" >/tmp/fuzz-$$.log 2>&1; do
      tries=$((tries+1))
      if grep -q 'Failing input written' /tmp/fuzz-$$.log || ! grep -q 'context deadline exceeded' /tmp/fuzz-$$.log || [ $tries -ge 3 ]; then
        cat /tmp/fuzz-$$.log; rm -f /tmp/fuzz-$$.log; exit 1
      fi
      echo "fuzz: $f: the fuzz coordinator timed out without a failing input; running it again"
    done
    n=$((n+1))
  done
done
rm -f /tmp/fuzz-$$.log
echo "fuzz: $n targets, no failure"
