#!/bin/bash
# HTTP/2 benchmark (issue 5), not part of make test. Usage:
#   bench/h2-bench.sh [BUILD] [ROUNDS]
# 1. h2load (HTTP/2, 10 connections x 10 streams) to nghttpd: through
#    xdsnode (HTTP/2 both sides), straight, and through HAProxy (h2 both
#    sides), interleaved ROUNDS times (benchmarking.md: quote ratios).
# 2. HTTP/1.1 clients with a new connection per request (wrk,
#    Connection: close): through xdsnode with its pooled HTTP/2 upstream
#    (nghttpd) vs straight to an HTTP/1.1 origin (nginx).
# Prints requests/s, p99 (from h2load's per-request log), the proxy's CPU
# per 10k requests (utime+stime of the process, /proc/PID/stat) and ratios.
# Proxies run alone on core 1, clients and origins on core 0.
set -u
build=${1:-build}
rounds=${2:-2}
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
N=50000
TICKS=$(getconf CLK_TCK)

mkdir -p "$TMP/www" "$TMP/nginx/tmp"
head -c 1024 /dev/zero | tr '\0' 'x' >"$TMP/www/index.html"
taskset -c 0 /usr/sbin/nghttpd -a 127.0.0.1 -d "$TMP/www" --no-tls -m 1000 18381 >/dev/null 2>&1 &
PIDS+=($!)
NGHTTPD_PID=$!

{
    bench_nginx_head "$TMP/nginx"
    cat <<CONF
    server { listen 127.0.0.1:18391; root $TMP/www; }
}
CONF
} >"$TMP/nginx/nginx.conf"
taskset -c 0 nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >/dev/null 2>&1 &
PIDS+=($!)

{
    bench_node_head 10381 h2
    cat <<'YAML'
  - name: h2
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: h2
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18381}}}
YAML
} >"$TMP/node.yaml"
taskset -c 1 "$build/xdsnode" -c "$TMP/node.yaml" --concurrency 1 --log-level warn >"$TMP/node.log" 2>&1 &
PIDS+=($!)
NODE_PID=$!

cat >"$TMP/haproxy.cfg" <<'CFG'
global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:10382 proto h2
    default_backend be
backend be
    http-reuse always
    server s1 127.0.0.1:18381 proto h2
CFG
taskset -c 1 haproxy -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!)
HAPROXY_PID=$!

wait_port 18381 && wait_port 18391 && wait_port 10381 && wait_port 10382 || exit 1
for pid in "$NGHTTPD_PID" "$NODE_PID" "$HAPROXY_PID"; do # a port taken by someone else
    kill -0 "$pid" 2>/dev/null || { echo "h2-bench: a peer did not start (port in use?)" >&2; exit 1; }
done

# h2run NAME PORT CPU_PID: one h2load run; appends "name rps p99_ms cpu_ms_per_10k".
h2run() {
    local name=$1 port=$2 pid=$3 before after out rps p99
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 0 h2load -n "$N" -c 10 -m 10 --log-file="$TMP/$name.lat" \
        "http://127.0.0.1:$port/index.html" 2>&1)
    after=$(cpu_ticks "$pid")
    rps=$(sed -n 's/.* \([0-9.]*\) req\/s.*/\1/p' <<<"$out" | head -1)
    if ! grep -q "^status codes: $N 2xx" <<<"$out"; then
        echo "  $name: not all 2xx: $(grep '^status codes' <<<"$out")"
    fi
    p99=$(awk '{print $3}' "$TMP/$name.lat" | sort -n | awk '{v[NR]=$1} END {printf "%.2f", v[int(NR*0.99)]/1000}')
    echo "$name $rps $p99 $(awk -v d=$((after - before)) -v t="$TICKS" -v n="$N" \
        'BEGIN {printf "%.1f", d * 1000 / t / n * 10000}')" >>"$TMP/results"
}

# h1run NAME PORT CPU_PID: wrk, a new connection per request, 5 s.
h1run() {
    local name=$1 port=$2 pid=$3 before after out rps reqs
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 0 wrk -t 1 -c 50 -d 5s -H 'Connection: close' "http://127.0.0.1:$port/index.html" 2>&1)
    after=$(cpu_ticks "$pid")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    grep -q 'Non-2xx\|Socket errors' <<<"$out" && echo "  $name: $(grep 'Non-2xx\|Socket errors' <<<"$out")"
    echo "$name $rps - $(awk -v d=$((after - before)) -v t="$TICKS" -v n="$reqs" \
        'BEGIN {printf "%.1f", d * 1000 / t / n * 10000}')" >>"$TMP/results"
}

: >"$TMP/results"
for _ in $(seq 1 "$rounds"); do
    h2run xdsnode-h2 10381 "$NODE_PID"
    h2run direct-h2 18381 "$NGHTTPD_PID"
    h2run haproxy-h2 10382 "$HAPROXY_PID"
    h1run xdsnode-h1-newconn 10381 "$NODE_PID"
    h1run direct-h1-newconn 18391 "$(cat "$TMP/nginx/nginx.pid")"
done

echo "run                  req/s      p99 ms  CPU ms per 10k requests (of the proxy; direct: the origin)"
awk '{printf "%-20s %-10s %-7s %s\n", $1, $2, $3, $4}' "$TMP/results"
avg() { awk -v n="$1" -v f="$2" '$1 == n {s += $f; c++} END {if (c) printf "%.1f", s / c; else print 0}' "$TMP/results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
echo
echo "averages over $rounds round(s):"
for n in xdsnode-h2 direct-h2 haproxy-h2 xdsnode-h1-newconn direct-h1-newconn; do
    echo "  $n: $(avg "$n" 2) req/s, $(avg "$n" 4) CPU ms per 10k"
done
echo "ratios:"
echo "  xdsnode/haproxy requests per CPU-second (h2 both sides): $(ratio "$(avg haproxy-h2 4)" "$(avg xdsnode-h2 4)") (target >= 1)"
echo "  xdsnode/haproxy req/s: $(ratio "$(avg xdsnode-h2 2)" "$(avg haproxy-h2 2)")"
echo "  xdsnode/direct req/s (h2): $(ratio "$(avg xdsnode-h2 2)" "$(avg direct-h2 2)")"
echo "  new-connection HTTP/1.1 clients, pooled h2 upstream vs direct: $(ratio "$(avg xdsnode-h1-newconn 2)" "$(avg direct-h1-newconn 2)") (target >= 2;"
echo "    plaintext loopback is bound by the client's own connects: see bench/tls-bench.sh for a TLS origin)"
