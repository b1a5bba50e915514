#!/bin/bash
# make bench: every benchmark (bench/*.sh but this runner and lib.sh), each printing
# its own figures. Not part of make test. Usage: bench/run.sh [BUILD]
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
status=0
for b in bench/*.sh; do
    case "$b" in bench/run.sh | bench/lib.sh) continue ;; esac
    echo "=== $b"
    bash "$b" "$build" || status=1
done
exit $status
