#!/bin/bash
# Data-plane benchmark (run by bench/run.sh): HTTP/1.1 through xdsnode vs
# HAProxy vs straight to nginx, one run, interleaved, same client (wrk) and connection counts. The proxy
# under test runs alone on CPU 1; wrk and nginx share CPU 0 (see
# ../shared/reference/benchmarking.md). Every proxy has one worker.
# Prints requests/s, p50/p99 latency and the proxy's CPU seconds per 10k
# requests (utime+stime of all its threads from /proc), as ratios to
# HAProxy; then the user's case: a new client connection per request,
# straight to nginx vs through xdsnode, with the origin connections nginx
# accepted (stub_status).
#
#   bench/dataplane.sh [BUILD_DIR]      env: DURATION (s, default 10), CONNS (50), ROUNDS (2)
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
DURATION=${DURATION:-10}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-2}
ORIGIN=19000 HAPROXY=19001 XDSNODE=19002
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ncpu=$(nproc)
LOAD_CPU=0
PROXY_CPU=$((ncpu > 1 ? 1 : 0))

# --- origin: nginx, 1 KiB body --------------------------------------------
mkdir -p "$tmp/www"
head -c 1024 /dev/zero | tr '\0' x >"$tmp/www/index.html"
{
    bench_nginx_head "$tmp/nginx"
    cat <<CONF
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$ORIGIN;
        root $tmp/www;
        location = /status { stub_status; }
    }
}
CONF
} >"$tmp/nginx.conf"
taskset -c $LOAD_CPU nginx -c "$tmp/nginx.conf" -p "$tmp/nginx" >"$tmp/nginx.out" 2>&1 &
pids+=($!)

# --- HAProxy: http-reuse always, keep-alive both sides ---------------------
cat >"$tmp/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$HAPROXY
    default_backend be
backend be
    server origin 127.0.0.1:$ORIGIN
CONF
taskset -c $PROXY_CPU haproxy -f "$tmp/haproxy.cfg" -db >"$tmp/haproxy.out" 2>&1 &
haproxy_pid=$!
pids+=($haproxy_pid)

# --- xdsnode --------------------------------------------------------------
{
    bench_node_head "$XDSNODE" origin
    cat <<CONF
  - name: origin
    connect_timeout: 1s
    circuit_breakers: {thresholds: [{max_connections: 100000, max_pending_requests: 100000, max_requests: 100000}]}
    load_assignment:
      cluster_name: origin
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $ORIGIN}}}}]}]
CONF
} >"$tmp/xdsnode.yaml"
taskset -c $PROXY_CPU "$build/xdsnode" -c "$tmp/xdsnode.yaml" --concurrency 1 -l warning \
    >"$tmp/xdsnode.log" 2>&1 &
xdsnode_pid=$!
pids+=($xdsnode_pid)

for port in $ORIGIN $HAPROXY $XDSNODE; do
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
done

all_ticks() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
accepts() { curl -s "http://127.0.0.1:$ORIGIN/status" | awk 'NR==3 {print $1}'; }
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }
hz=$(getconf CLK_TCK)

# run NAME PORT PID EXTRA_WRK_ARGS...: one wrk run; appends
# "name rps p50 p99 cpu_s requests origin_conns" to $tmp/results.
run() {
    local name=$1 port=$2 pid=$3
    shift 3
    local t0 a0 out rps p50 p99 reqs t1 a1 cpu
    t0=$([ "$pid" = - ] && echo 0 || cpu_ticks "$pid")
    a0=$(accepts)
    out=$(taskset -c $LOAD_CPU wrk -t 1 -c "$CONNS" -d "${DURATION}s" --latency "$@" "http://127.0.0.1:$port/" 2>&1)
    a1=$(accepts)
    t1=$([ "$pid" = - ] && echo 0 || cpu_ticks "$pid")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')
    echo "$name $rps $p50 $p99 $cpu $reqs $((a1 - a0 - 1))" >>"$tmp/results"
    printf '  %-22s %9s req/s  p50 %7s ms  p99 %7s ms  proxy cpu %6s s  origin conns %s\n' \
        "$name" "$rps" "$p50" "$p99" "$cpu" "$((a1 - a0 - 1))"
}

echo "== keep-alive clients: wrk -c $CONNS -d ${DURATION}s, proxy on CPU $PROXY_CPU, wrk+nginx on CPU $LOAD_CPU"
for r in $(seq 1 "$ROUNDS"); do
    run direct $ORIGIN -
    run haproxy $HAPROXY $haproxy_pid
    run xdsnode $XDSNODE $xdsnode_pid
done
echo "== new client connection per request (Connection: close)"
for r in $(seq 1 "$ROUNDS"); do
    run direct-close $ORIGIN - -H 'Connection: close'
    run xdsnode-close $XDSNODE $xdsnode_pid -H 'Connection: close'
done

echo
echo "== summary (means over $ROUNDS rounds; efficiency = requests per proxy CPU second)"
awk -v rounds="$ROUNDS" '
    { n[$1]++; rps[$1] += $2; p50[$1] += $3; p99[$1] += $4; cpu[$1] += $5; req[$1] += $6; oc[$1] += $7 }
    END {
        for (k in n) { rps[k] /= n[k]; p50[k] /= n[k]; p99[k] /= n[k] }
        eff_h = cpu["haproxy"] > 0 ? req["haproxy"] / cpu["haproxy"] : 0
        eff_x = cpu["xdsnode"] > 0 ? req["xdsnode"] / cpu["xdsnode"] : 0
        printf "  %-10s %10s %9s %9s %14s %14s\n", "", "req/s", "p50 ms", "p99 ms", "cpu s/10k rq", "rq per cpu s"
        split("direct haproxy xdsnode", order, " ")
        for (i = 1; i <= 3; i++) {
            k = order[i]
            c = (k != "direct" && req[k] > 0) ? sprintf("%.3f", cpu[k] / req[k] * 10000) : "-"
            e = (k != "direct" && cpu[k] > 0) ? sprintf("%.0f", req[k] / cpu[k]) : "-"
            printf "  %-10s %10.0f %9.3f %9.3f %14s %14s\n", k, rps[k], p50[k], p99[k], c, e
        }
        printf "\n  xdsnode / haproxy: req/s %.2fx, p99 %.2fx, requests per CPU second %.2fx\n",
            rps["xdsnode"] / rps["haproxy"], p99["xdsnode"] / p99["haproxy"], (eff_h > 0 ? eff_x / eff_h : 0)
        printf "  xdsnode / direct:  req/s %.2fx\n", rps["xdsnode"] / rps["direct"]
        printf "\n  new connection per request: direct %.0f req/s (origin conns %d), xdsnode %.0f req/s (origin conns %d), ratio %.2fx\n",
            rps["direct-close"], oc["direct-close"], rps["xdsnode-close"], oc["xdsnode-close"],
            rps["xdsnode-close"] / rps["direct-close"]
        printf "  origin connections per 1,000 requests through xdsnode: %.2f\n",
            (req["xdsnode-close"] > 0 ? oc["xdsnode-close"] / req["xdsnode-close"] * 1000 : 0)
    }' "$tmp/results"
