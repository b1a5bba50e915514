#!/bin/bash
# make bench: every benchmark, each printing its own figures. Not part of
# make test. Usage: bench/run.sh [BUILD]
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
status=0
for b in bench/xds-scale.sh bench/h2-bench.sh; do
    echo "=== $b"
    bash "$b" "$build" || status=1
done
exit $status
