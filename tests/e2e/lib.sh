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

# --- upstreams: nginx from Debian, private config, daemon off -------------

NGINX_PIDS=()
cleanup_nginx() {
    for pid in "${NGINX_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
}
trap 'cleanup_nginx; cleanup_e2e' EXIT

# start_nginx NAME PORT [SERVER_DIRECTIVES] [HTTP_DIRECTIVES]: an nginx on
# 127.0.0.1:PORT serving $E2E_TMP/NAME/www (index.html = "hello from
# NAME"), /status (stub_status), /slow (1 KiB at 512 B/s), /sleep (1 s
# then "slept"), /echo (the request body back), /headers (some request
# headers as seen upstream), /fail503 (503), /close (Connection: close),
# PUT to
# /upload/* (WebDAV: stored under www/upload/), /chunked/F (www/F served
# with chunked encoding). Waits until it answers.
start_nginx() {
    local name=$1 port=$2 server_extra=${3:-} http_extra=${4:-}
    local dir="$E2E_TMP/$name"
    mkdir -p "$dir/www" "$dir/tmp"
    printf 'hello from %s\n' "$name" >"$dir/www/index.html"
    head -c 1024 /dev/zero | tr '\0' 's' >"$dir/www/slow"
    cat >"$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log $dir/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 100000;
    $http_extra
    server {
        listen 127.0.0.1:$port;
        root $dir/www;
        add_header X-Upstream $name always;
        location = /status { stub_status; }
        location = /slow { limit_rate 512; }
        location = /sleep { echo_sleep 1; echo slept; }
        location = /fail503 { return 503 "failed by $name\n"; }
        location = /close { keepalive_timeout 0; }
        location = /echo {
            client_max_body_size 100m;
            client_body_buffer_size 32m;
            echo_read_request_body;
            echo_request_body;
        }
        location = /headers { echo "\$http_connection|\$http_x_forwarded_proto|\$http_x_request_id|\$http_te|\$http_x_hop"; }
        location /upload/ { dav_methods PUT; create_full_put_path on; client_max_body_size 100m; }
        location /chunked/ {
            proxy_pass http://127.0.0.1:$port/;
            proxy_http_version 1.1;
            proxy_hide_header Content-Length;
        }
        $server_extra
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" >"$dir/stdout.log" 2>&1 &
    NGINX_PIDS+=($!)
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/status" && return 0
        sleep 0.05
    done
    echo "NOTE nginx $name did not start:"; cat "$dir/stdout.log" "$dir/error.log" 2>/dev/null
    return 1
}

# nginx_accepts PORT: the "accepts" counter of stub_status, minus the
# connection that reads it. Between two readings, subtract one more (the
# first reading's own connection): see nginx_new_conns.
nginx_accepts() {
    local n
    n=$(curl -s "http://127.0.0.1:$1/status" | awk 'NR==3 {print $1}')
    echo $((n - 1))
}

# nginx_new_conns PORT BEFORE: connections accepted since BEFORE (an
# nginx_accepts reading), not counting the status reads themselves.
nginx_new_conns() {
    echo $(($(nginx_accepts "$1") - $2 - 1))
}

# stat NAME: one counter from the node's /stats.
stat() {
    curl -s "http://$ADMIN/stats?filter=^$1\$" | awk -F': ' '{print $2}'
}

# quit_node: POST /quitquitquit and wait for a clean exit (EXIT_CODE).
quit_node() {
    curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
    wait_exit "$NODE_PID" 10
}

# require_free_ports PORT...: the tests use fixed loopback ports; another
# run of the suite on this machine would share them silently (listeners
# use SO_REUSEPORT), so stop with a clear failure instead.
require_free_ports() {
    local p busy=""
    for p in "$@"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then busy="$busy $p"; fi
    done
    if [ -n "$busy" ]; then
        fail "ports free" "127.0.0.1 port(s)$busy already in use (another test run?)"
        exit 1
    fi
}
