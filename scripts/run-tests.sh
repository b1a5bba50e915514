#!/bin/bash
# Runs every test against one build directory and prints one closing line,
# "N passed, N failed", counting unit tests (each Criterion test) and
# end-to-end checks (each PASS/FAIL line of tests/e2e/*.sh) together.
#
#   scripts/run-tests.sh BUILD_DIR
#
# A sanitizer report (AddressSanitizer, LeakSanitizer, UBSan) anywhere in a
# test's output counts as a failure even when Criterion calls the test
# passed (its forked workers do not turn leaks into failures).
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 2
export BUILD="$build"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

passed=0
failed=0
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

sanitizer_report() {
    grep -aE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$1" >/dev/null
}

run_unit() {
    local bin=$1 name log synth tested passing
    name=$(basename "$bin")
    log="$logdir/$name.log"
    "$bin" --jobs 2 >"$log" 2>&1
    local rc=$?
    synth=$(grep -a 'Synthesis:' "$log" | tail -n 1)
    if [ -z "$synth" ]; then
        echo "FAIL $name: no Criterion summary (exit $rc)"
        tail -n 20 "$log"
        failed=$((failed + 1))
        return
    fi
    tested=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$synth")
    passing=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$synth")
    if sanitizer_report "$log"; then
        echo "FAIL $name: sanitizer report"
        grep -aE -A12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -n 40
        passing=$((passing > 0 ? passing - 1 : 0))
    fi
    if [ "$passing" -lt "$tested" ] || [ "$rc" -ne 0 ]; then
        grep -aE '\[(FAIL|----)\]|CRASH' "$log" | head -n 40
    fi
    echo "unit $name: $passing of $tested passed"
    passed=$((passed + passing))
    failed=$((failed + tested - passing))
    [ "$rc" -ne 0 ] && [ "$passing" -eq "$tested" ] && failed=$((failed + 1))
}

run_e2e() {
    local script=$1 name log p f
    name=$(basename "$script" .sh)
    log="$logdir/$name.log"
    bash "$script" >"$log" 2>&1
    local rc=$?
    p=$(grep -ac "^PASS " "$log")
    f=$(grep -ac "^FAIL " "$log")
    grep -E '^(FAIL|NOTE) ' "$log"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: script exited $rc"
        tail -n 20 "$log"
        f=1
    fi
    echo "e2e $name: $p passed, $f failed"
    passed=$((passed + p))
    failed=$((failed + f))
}

for bin in "$build"/tests/test_*; do
    [ -x "$bin" ] && run_unit "$bin"
done
for script in tests/e2e/test_*.sh; do
    [ -f "$script" ] && run_e2e "$script"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
