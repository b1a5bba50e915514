#!/bin/bash
# TLS benchmark, not part of make test. Usage:
#   bench/tls-bench.sh [BUILD] [ROUNDS]
# The case the project cares about: HTTP/1.1 clients that open a new
# connection per request (wrk, Connection: close) to a TLS origin (nginx,
# ECDSA P-256 certificate, HTTP/1.1 and HTTP/2 on one TLS port):
#   direct: wrk https:// straight to the origin, a full TLS handshake per
#           request (wrk does not resume sessions);
#   pooled: wrk http:// to xdsnode, which pools over TLS to the same origin
#           (HTTP/2 chosen by ALPN, the certificate verified against the CA).
# Interleaved ROUNDS times (benchmarking.md: quote ratios). Prints req/s,
# p99, CPU ms per 10k requests of the proxy and of the origin (utime+stime
# from /proc/PID/stat), the origin connections each pooled run opened
# (nginx stub_status), and the pooled/direct ratios. xdsnode (one worker)
# runs alone on core 1; wrk and nginx on core 0. Ports 18581-18582, 10581.
set -u
build=${1:-build}
rounds=${2:-2}
cd "$(dirname "$0")/.." || exit 1
. bench/lib.sh
TMP=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT
ORIGIN=18581
STATUS=18582
LISTEN=10581
DURATION=${DURATION:-5}
CONNS=${CONNS:-50}
TICKS=$(getconf CLK_TCK)

accepts() { curl -s "http://127.0.0.1:$STATUS/status" | awk 'NR==3 {print $1}'; }

# A cheap-but-realistic origin certificate: ECDSA P-256, signed by a CA.
PKI="$TMP/pki"
mkdir -p "$PKI"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/ca.key" 2>/dev/null
openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=bench CA" -days 2 -out "$PKI/ca.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/server.key" 2>/dev/null
openssl req -new -key "$PKI/server.key" -subj "/CN=origin.test" -out "$PKI/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:origin.test,IP:127.0.0.1\n' >"$PKI/server.ext"
openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial -days 2 \
    -extfile "$PKI/server.ext" -out "$PKI/server.pem" 2>/dev/null || { echo "tls-bench: openssl failed" >&2; exit 1; }

mkdir -p "$TMP/www" "$TMP/nginx/tmp"
head -c 1024 /dev/zero | tr '\0' 'x' >"$TMP/www/index.html"
{
    bench_nginx_head "$TMP/nginx"
    cat <<CONF
    keepalive_requests 10000000;
    server {
        listen 127.0.0.1:$ORIGIN ssl http2;
        ssl_certificate $PKI/server.pem;
        ssl_certificate_key $PKI/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $TMP/www;
    }
    server { listen 127.0.0.1:$STATUS; location = /status { stub_status; } }
}
CONF
} >"$TMP/nginx/nginx.conf"
taskset -c 0 nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >"$TMP/nginx/stdout.log" 2>&1 &
PIDS+=($!)
NGINX_PID=$!

{
    bench_node_head "$LISTEN" origin
    cat <<YAML
  - name: origin
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: origin
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $ORIGIN}}}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: origin.test
        common_tls_context:
          validation_context:
            trusted_ca: {filename: $PKI/ca.pem}
            match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: origin.test}}]
YAML
} >"$TMP/node.yaml"
taskset -c 1 "$build/xdsnode" -c "$TMP/node.yaml" --concurrency 1 --log-level warn >"$TMP/node.log" 2>&1 &
PIDS+=($!)
NODE_PID=$!

wait_port "$ORIGIN" && wait_port "$STATUS" && wait_port "$LISTEN" || exit 1
for pid in "$NGINX_PID" "$NODE_PID"; do # a port taken by someone else
    kill -0 "$pid" 2>/dev/null || { echo "tls-bench: a peer did not start (port in use?)" >&2; exit 1; }
done
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LISTEN/index.html")" != 200 ]; then
    echo "tls-bench: no 200 through xdsnode over TLS:" >&2
    cat "$TMP/node.log" >&2
    exit 1
fi

# p99 in ms from wrk --latency ("99%  3.21ms").
p99_ms() {
    awk '$1 == "99%" {v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
         m = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v; printf "%.2f", m}'
}

# run NAME URL: wrk, a new connection per request; appends
# "name rps p99_ms node_cpu_ms_per_10k origin_cpu_ms_per_10k origin_conns".
run() {
    local name=$1 url=$2 n0 o0 n1 o1 a0 a1 out rps reqs
    a0=$(accepts)
    n0=$(cpu_ticks "$NODE_PID")
    o0=$(cpu_ticks "$NGINX_PID")
    out=$(taskset -c 0 wrk -t 1 -c "$CONNS" -d "${DURATION}s" --latency -H 'Connection: close' "$url" 2>&1)
    n1=$(cpu_ticks "$NODE_PID")
    o1=$(cpu_ticks "$NGINX_PID")
    a1=$(accepts)
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    grep -q 'Non-2xx\|Socket errors' <<<"$out" && echo "  $name: $(grep 'Non-2xx\|Socket errors' <<<"$out")"
    # origin connections: all accepts minus the two status reads; direct: one per request
    echo "$name $rps $(p99_ms <<<"$out") $(awk -v d=$((n1 - n0)) -v t="$TICKS" -v n="$reqs" \
        'BEGIN {printf "%.1f", d * 1000 / t / n * 10000}') $(awk -v d=$((o1 - o0)) -v t="$TICKS" \
        -v n="$reqs" 'BEGIN {printf "%.1f", d * 1000 / t / n * 10000}') $((a1 - a0 - 1))" >>"$TMP/results"
}

: >"$TMP/results"
for _ in $(seq 1 "$rounds"); do
    run direct-tls "https://127.0.0.1:$ORIGIN/index.html"
    run pooled-tls "http://127.0.0.1:$LISTEN/index.html"
done

echo "run          req/s      p99 ms  proxy CPU ms/10k  origin CPU ms/10k  origin conns"
awk '{printf "%-12s %-10s %-7s %-17s %-18s %s\n", $1, $2, $3, ($1 ~ /^direct/ ? "-" : $4), $5, $6}' "$TMP/results"
avg() { awk -v n="$1" -v f="$2" '$1 == n {s += $f; c++} END {if (c) printf "%.1f", s / c; else print 0}' "$TMP/results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
echo
echo "averages over $rounds round(s), $CONNS connections, ${DURATION}s each:"
for n in direct-tls pooled-tls; do
    echo "  $n: $(avg "$n" 2) req/s, p99 $(avg "$n" 3) ms, origin $(avg "$n" 5) CPU ms per 10k$( \
        [ "$n" = pooled-tls ] && echo ", proxy $(avg "$n" 4) CPU ms per 10k")"
done
echo "ratios pooled/direct:"
echo "  req/s: $(ratio "$(avg pooled-tls 2)" "$(avg direct-tls 2)")"
echo "  p99: $(ratio "$(avg pooled-tls 3)" "$(avg direct-tls 3)")"
echo "  origin CPU per request: $(ratio "$(avg pooled-tls 5)" "$(avg direct-tls 5)")"
echo "  proxy + origin CPU per request vs origin alone: $(ratio "$(awk -v a="$(avg pooled-tls 4)" -v b="$(avg pooled-tls 5)" 'BEGIN {print a + b}')" "$(avg direct-tls 5)")"
