# Shared helpers for end-to-end tests: real processes, real sockets on
# 127.0.0.1, real clients (curl, jq). Each check prints "PASS name" or
# "FAIL name: why"; scripts/run-tests.sh counts those lines.

BUILD=${BUILD:-build}
XDSNODE="$BUILD/xdsnode"
E2E_TMP=$(mktemp -d)
NODE_PIDS=()

cleanup_e2e() {
    for pid in "${NODE_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$E2E_TMP"
}
trap cleanup_e2e EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name" "$*"; fi
}

# expect_eq NAME GOT WANT
expect_eq() {
    if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got [$2], want [$3]"; fi
}

# expect_contains NAME HAYSTACK NEEDLE
expect_contains() {
    if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1" "[$3] not in [${2:0:600}]"; fi
}

# Admin on a free loopback port, merged over any bootstrap.
ADMIN_ANY_PORT='admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}'

# start_node LOGNAME ARGS...: starts xdsnode, waits for its admin address.
# Sets NODE_PID and ADMIN (host:port). Returns 1 if it did not come up.
start_node() {
    local logname=$1
    shift
    local addr_file="$E2E_TMP/$logname.admin"
    rm -f "$addr_file"
    "$XDSNODE" --admin-address-path "$addr_file" "$@" >"$E2E_TMP/$logname.log" 2>&1 &
    NODE_PID=$!
    NODE_PIDS+=("$NODE_PID")
    for _ in $(seq 1 200); do
        if [ -s "$addr_file" ]; then
            ADMIN=$(cat "$addr_file")
            return 0
        fi
        kill -0 "$NODE_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "NOTE node did not start; log:"
    sed 's/^/  /' "$E2E_TMP/$logname.log"
    return 1
}

# wait_exit PID SECONDS: waits for PID (a child of this shell) to exit and
# sets EXIT_CODE to its status, or to "timeout".
wait_exit() {
    local pid=$1 limit=$2
    EXIT_CODE=timeout
    for _ in $(seq 1 $((limit * 20))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid"
            EXIT_CODE=$?
            return 0
        fi
        sleep 0.05
    done
}

# node_log_clean LOGNAME: no sanitizer report in the node's log.
node_log_clean() {
    ! grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$E2E_TMP/$1.log"
}

# http METHOD URL: prints "STATUS\nBODY".
http() {
    local out
    out=$(curl -s -o "$E2E_TMP/body" -w '%{http_code}' -X "$1" "$2")
    echo "$out"
    cat "$E2E_TMP/body"
}
