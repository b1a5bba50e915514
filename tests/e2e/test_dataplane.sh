#!/bin/bash
# End to end: the data plane with real processes on 127.0.0.1: xdsnode
# (testdata/e2e/dataplane.yaml), nginx upstreams (stub_status counts the
# connections they accepted), curl and wrk as clients.
set -u
. "$(dirname "$0")/lib.sh"
require_free_ports 10081 10082 18081 18082 18083 18084 18085 18089

for i in 1 2 3 4 5; do
    start_nginx "up$i" "1808$i" || exit 1
done
head -c $((10 * 1024 * 1024)) /dev/urandom >"$E2E_TMP/up4/www/big.bin"
big_sha=$(sha256sum <"$E2E_TMP/up4/www/big.bin" | cut -d' ' -f1)

LOG="$E2E_TMP/access.log"
sed "s|ACCESS_LOG_PATH|$LOG|" testdata/e2e/dataplane.yaml >"$E2E_TMP/dataplane.yaml"
cfg=(-c "$E2E_TMP/dataplane.yaml" --config-yaml "$ADMIN_ANY_PORT")
URL=http://127.0.0.1:10081

out=$("$XDSNODE" --mode validate -c "$E2E_TMP/dataplane.yaml" 2>&1)
expect_contains "dataplane bootstrap validates" "$out" "OK"

# --- the user's story: new connection per request, few upstream ones -------

if ! start_node pooled "${cfg[@]}" --concurrency 2; then
    fail "node starts with listeners" "see log"
    exit 1
fi
pass "node starts with listeners"
before=$(nginx_accepts 18084)
codes=$(for _ in $(seq 1 1000); do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Connection: close' "$URL/"
done | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
used=$(nginx_new_conns 18084 "$before")
expect_eq "1000 new-connection requests all 200" "$codes" "200:1000 "
check "1000 requests used at most --concurrency (2) upstream connections (used $used)" \
    test "$used" -le 2 -a "$used" -ge 1
expect_eq "upstream_rq_total counts them" "$(stat cluster.single.upstream_rq_total)" 1000
expect_eq "upstream_rq_2xx counts them" "$(stat cluster.single.upstream_rq_2xx)" 1000
expect_eq "upstream_cx_http1_total" "$(stat cluster.single.upstream_cx_http1_total)" "$used"

# wrk: keep-alive clients, many requests, still few upstream connections.
# HTTP/1.1 has one request per connection, so up to 20 upstream ones.
before=$(nginx_accepts 18084)
wrk_out=$(wrk -t 2 -c 20 -d 2s "$URL/" 2>&1)
new=$(nginx_new_conns 18084 "$before")
check "wrk saw no errors" bash -c "! grep -q 'Non-2xx\|Socket errors' <<<'$wrk_out'"
reqs=$(awk '/requests in/ {print $1}' <<<"$wrk_out")
check "wrk: $reqs requests over $new new upstream connections (at most 20)" test "$new" -le 20

quit_node
expect_eq "node exits 0 on /quitquitquit after traffic" "$EXIT_CODE" 0
check "no sanitizer report (pooled node)" node_log_clean pooled

# --- one worker: routing, local replies, LB, bodies --------------------------

start_node main "${cfg[@]}" --concurrency 1 || exit 1
out=$(timeout 5 "$XDSNODE" "${cfg[@]}" 2>&1); rc=$?
expect_eq "a second node on the same listener port exits 1" "$rc" 1
expect_contains "and says why (no silent SO_REUSEPORT sharing)" "$out" \
    "listener 'http': cannot bind port 10081: Address already in use"

expect_eq "config_dump lists the static listeners" \
    "$(curl -s "http://$ADMIN/config_dump?resource=static_listeners" | jq -r '[.configs[].listener.name] | join(",")')" \
    "http,tcp"

hdr() { curl -s -D - -o /dev/null "$@" | tr -d '\r'; }
upstream_of() { hdr "$@" | sed -n 's/^x-upstream: //Ip'; }

expect_eq "default route to single" "$(upstream_of "$URL/")" up4
expect_eq "vhost exact domain" "$(upstream_of -H 'Host: exact.test' "$URL/")" up2
expect_eq "vhost *.suffix" "$(upstream_of -H 'Host: a.b.suffix.test' "$URL/")" up1
expect_eq "vhost prefix.*" "$(upstream_of -H 'Host: prefix.example' "$URL/")" up2
expect_eq "route by path" "$(upstream_of "$URL/exact-path")" up1
expect_eq "route by safe_regex" "$(upstream_of "$URL/re/42")" up2
expect_eq "regex is a full match" "$(upstream_of "$URL/re/42x")" up4
expect_eq "cluster_header" "$(upstream_of -H 'x-cluster: w2' "$URL/byheader")" up2
expect_eq "egress: Host without port uses the listener port" \
    "$(upstream_of -H 'Host: app.svc' "$URL/")" up1
expect_eq "egress: Host port picks outbound|80||app.svc" \
    "$(upstream_of -H 'Host: app.svc:80' "$URL/")" up3
seen=$(for _ in $(seq 1 40); do upstream_of "$URL/weighted"; done | sort -u | tr '\n' ' ')
expect_eq "weighted_clusters reach both" "$seen" "up1 up2 "

# Round robin: 30 requests, 10 per host.
rr=$(for _ in $(seq 1 30); do upstream_of -H 'Host: rr.test' "$URL/"; done | sort | uniq -c |
     awk '{print $2":"$1}' | tr '\n' ' ')
expect_eq "round robin spreads evenly over 3 hosts" "$rr" "up1:10 up2:10 up3:10 "

# Local replies, exactly as Envoy.
resp=$(http GET "$URL/nohosts")
expect_eq "no hosts: 503 no healthy upstream" "$resp" "$(printf '503\nno healthy upstream')"
resp=$(http GET "$URL/unhealthy")
expect_eq "UNHEALTHY/DRAINING hosts are skipped" "$resp" "$(printf '503\nno healthy upstream')"
resp=$(http GET "$URL/dead")
expect_eq "dead host: 503 connection failure" "$resp" \
    "$(printf '503\nupstream connect error or disconnect/reset before headers. reset reason: connection failure')"
expect_eq "connect failure counted" "$(stat cluster.dead.upstream_cx_connect_fail)" 1
resp=$(http GET "$URL/sleep")
expect_eq "route timeout: 504 upstream request timeout" "$resp" "$(printf '504\nupstream request timeout')"
expect_eq "upstream_rq_timeout counted" "$(stat cluster.single.upstream_rq_timeout)" 1
resp=$(curl -s -o /dev/null -w '%{http_code}' "$URL/missing")
expect_eq "unknown cluster: 503 (NC)" "$resp" 503
resp=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-cluster: nope' "$URL/byheader")
expect_eq "cluster_header naming no cluster: 503" "$resp" 503

# Retries: connect-failure moves to another host; 5xx retried up to
# num_retries, then the upstream's own answer is returned.
codes=$(for _ in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code} ' "$URL/retry-connect"; done)
expect_eq "retry_on connect-failure reaches the live host (its 404)" "$codes" "404 404 404 404 "
check "connect-failure retries counted" test "$(stat cluster.retry_pair.upstream_rq_retry)" -ge 1
resp=$(http GET "$URL/fail503")
expect_eq "5xx retried twice, then the upstream's 503" "$resp" "$(printf '503\nfailed by up1')"
expect_eq "upstream_rq_retry counts 2" "$(stat cluster.w1.upstream_rq_retry)" 2
expect_eq "upstream_rq_5xx counts 3 attempts" "$(stat cluster.w1.upstream_rq_5xx)" 3

# Connection retirement: max_requests_per_connection and Connection: close.
before=$(nginx_accepts 18083)
for _ in 1 2 3 4 5 6; do curl -s -o /dev/null "$URL/few/"; done
expect_eq "max_requests_per_connection 2: 6 requests, 3 connections" "$(nginx_new_conns 18083 "$before")" 3
expect_eq "upstream_cx_max_requests" "$(stat cluster.few.upstream_cx_max_requests)" 3
before=$(nginx_accepts 18084)
codes=$(for _ in 1 2 3; do curl -s -o /dev/null -w '%{http_code} ' "$URL/close"; done)
expect_eq "upstream Connection: close answers pass" "$codes" "404 404 404 "
expect_eq "upstream Connection: close is honoured (3 connections)" "$(nginx_new_conns 18084 "$before")" 3
check "upstream_cx_close_notify counted" test "$(stat cluster.single.upstream_cx_close_notify)" -ge 3

# HEAD, Expect: 100-continue, pipelining.
h=$(curl -s -I "$URL/big.bin" | tr -d '\r')
expect_contains "HEAD keeps content-length, no body" "$h" "content-length: 10485760"
out=$(curl -sv --data-binary @"$E2E_TMP/up4/www/big.bin" -H 'Expect: 100-continue' -o /dev/null "$URL/echo" 2>&1 | tr -d '\r')
expect_contains "Expect: 100-continue answered by the node" "$out" "< HTTP/1.1 100 Continue"
expect_contains "then the echo response" "$out" "< HTTP/1.1 200 OK"
exec 3<>/dev/tcp/127.0.0.1/10081
printf 'GET /exact-path HTTP/1.1\r\nHost: x\r\n\r\nGET /re/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
out=$(timeout 3 cat <&3 | tr -d '\r')
exec 3<&-
expect_eq "two pipelined requests, two responses in order" \
    "$(grep -i '^x-upstream:' <<<"$out" | tr '\n' ' ')" "x-upstream: up1 x-upstream: up2 "

# Headers: hop-by-hop removed, Envoy's added headers.
seen=$(curl -s -H 'Connection: keep-alive, x-hop' -H 'x-hop: 1' -H 'TE: trailers' "$URL/headers")
IFS='|' read -r up_conn up_xfp up_rid up_te up_hop <<<"$seen"
check "Connection from client not forwarded as-is" test "$up_conn" != "keep-alive, x-hop"
expect_eq "header named in Connection removed" "$up_hop" ""
expect_eq "TE: trailers kept as the one TE value that passes (Envoy)" "$up_te" "trailers"
seen=$(curl -s -H 'TE: gzip' "$URL/headers")
IFS='|' read -r _ _ _ up_te _ <<<"$seen"
expect_eq "TE: gzip removed" "$up_te" ""
expect_eq "x-forwarded-proto set" "$up_xfp" "http"
check "x-request-id generated (uuid4)" grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$up_rid"
seen=$(curl -s -H 'x-request-id: mine' "$URL/headers" | cut -d'|' -f3)
expect_eq "x-request-id kept" "$seen" "mine"
h=$(hdr "$URL/")
check "x-envoy-upstream-service-time present" grep -q '^x-envoy-upstream-service-time: [0-9]*$' <<<"$h"
check "server: envoy" grep -q '^server: envoy$' <<<"$h"

# Bodies: 10 MiB both ways, content-length and chunked.
got=$(curl -s "$URL/big.bin" | sha256sum | cut -d' ' -f1)
expect_eq "10 MiB response intact" "$got" "$big_sha"
got=$(curl -s "$URL/chunked/big.bin" | sha256sum | cut -d' ' -f1)
expect_eq "10 MiB chunked response intact" "$got" "$big_sha"
got=$(curl -s --data-binary @"$E2E_TMP/up4/www/big.bin" "$URL/echo" | sha256sum | cut -d' ' -f1)
expect_eq "10 MiB request body echoed intact" "$got" "$big_sha"
code=$(curl -s -o /dev/null -w '%{http_code}' -T "$E2E_TMP/up4/www/big.bin" \
       -H 'Transfer-Encoding: chunked' "$URL/upload/chunked.bin")
check "chunked 10 MiB upload accepted ($code)" test "$code" = 201 -o "$code" = 204
got=$(sha256sum <"$E2E_TMP/up4/www/upload/chunked.bin" 2>/dev/null | cut -d' ' -f1)
expect_eq "chunked 10 MiB request body intact at the upstream" "$got" "$big_sha"
got=$(curl -s "$URL/big.bin" -o /dev/null --limit-rate 20M -w '%{size_download}')
expect_eq "slow reader gets every byte (backpressure)" "$got" $((10 * 1024 * 1024))

# Strict parsing: 400 and close.
raw() {
    exec 3<>/dev/tcp/127.0.0.1/10081
    printf "$1" >&3
    timeout 2 head -c 400 <&3 | tr -d '\r'
    exec 3<&-
}
out=$(raw 'GARBAGE\r\n\r\n')
expect_contains "bad request line: 400" "$out" "HTTP/1.1 400 Bad Request"
out=$(raw 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n')
expect_contains "Content-Length with Transfer-Encoding: 400" "$out" "HTTP/1.1 400 Bad Request"
out=$(raw 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')
expect_contains "duplicate Content-Length: 400" "$out" "HTTP/1.1 400 Bad Request"
expect_contains "400 closes the connection" "$out" "connection: close"
big=$(head -c 70000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "x-big: $big" "$URL/")
expect_eq "headers over 60 KiB: 431" "$code" 431

# Keep-alive downstream: several requests on one client connection.
n=$(curl -s -o /dev/null -w '%{num_connects}\n' "$URL/" "$URL/" "$URL/" | awk '{s+=$1} END {print s}')
expect_eq "3 requests on one keep-alive client connection" "$n" 1

# Access log: Envoy's default format with response flags.
sleep 0.2
check "access log line for a 200" grep -q '"GET / HTTP/1.1" 200 - ' "$LOG"
check "access log flag UH" grep -q '"GET /nohosts HTTP/1.1" 503 UH ' "$LOG"
check "access log flag UF" grep -q '"GET /dead HTTP/1.1" 503 UF ' "$LOG"
check "access log flag UT" grep -q '"GET /sleep HTTP/1.1" 504 UT ' "$LOG"
check "access log flag NC" grep -q '"GET /missing HTTP/1.1" 503 NC ' "$LOG"
check "access log upstream host" grep -q '"127.0.0.1:18084"$' "$LOG"

# TCP proxy: 10 MiB through a raw TCP listener (HTTP to nginx inside).
got=$(curl -s --data-binary @"$E2E_TMP/up4/www/big.bin" http://127.0.0.1:10082/echo | sha256sum | cut -d' ' -f1)
expect_eq "tcp_proxy carries 10 MiB both ways intact" "$got" "$big_sha"
out=$(curl -s -0 http://127.0.0.1:10082/ | head -c 100)
expect_eq "tcp_proxy passes the upstream's close (HTTP/1.0)" "$out" "hello from up4"

# /clusters, text and JSON.
cl=$(curl -s "http://$ADMIN/clusters")
expect_contains "/clusters cx_active" "$cl" "single::127.0.0.1:18084::cx_active::"
expect_contains "/clusters health_flags" "$cl" "web::127.0.0.1:18081::health_flags::healthy"
expect_contains "/clusters failed eds health" "$cl" "unhealthy::127.0.0.1:18081::health_flags::/failed_eds_health"
expect_contains "/clusters circuit breakers" "$cl" "limited::default_priority::max_connections::2"
expect_contains "/clusters high priority defaults" "$cl" "limited::high_priority::max_retries::3"
expect_contains "/clusters rq_total" "$cl" "web::127.0.0.1:18082::rq_total::10"
js=$(curl -s "http://$ADMIN/clusters?format=json")
expect_eq "/clusters json host address" \
    "$(jq -r '.cluster_statuses[] | select(.name=="web") | .host_statuses[1].address.socket_address.port_value' <<<"$js")" 18082
expect_eq "/clusters json thresholds" \
    "$(jq -c '.cluster_statuses[] | select(.name=="limited") | .circuit_breakers.thresholds[0]' <<<"$js")" \
    '{"max_connections":2,"max_pending_requests":5,"max_requests":1024,"max_retries":3}'
expect_eq "/clusters json rq_success stat" \
    "$(jq -r '.cluster_statuses[] | select(.name=="web") | .host_statuses[0].stats[] | select(.name=="rq_success") | .value' <<<"$js")" 10

# --- circuit breakers: max_connections 2, max_pending_requests 5 -----------
before=$(nginx_accepts 18085)
pids=()
for i in $(seq 1 20); do
    curl -s -D "$E2E_TMP/cb.$i.h" -o /dev/null -H 'Host: limited.test' "$URL/slow" &
    pids+=($!)
done
wait "${pids[@]}"
new=$(nginx_new_conns 18085 "$before")
ok=$(grep -l '^HTTP/1.1 200' "$E2E_TMP"/cb.*.h | wc -l)
over=$(grep -l '^HTTP/1.1 503' "$E2E_TMP"/cb.*.h | wc -l)
check "upstream saw at most 2 connections (saw $new)" test "$new" -le 2
expect_eq "2 active + 5 pending succeed" "$ok" 7
expect_eq "the other 13 get 503" "$over" 13
marked=$(grep -il '^x-envoy-overloaded: true' "$E2E_TMP"/cb.*.h | wc -l)
expect_eq "every 503 has x-envoy-overloaded" "$marked" 13
named=$(grep -il '^x-xdsnode-overflow: max_pending_requests' "$E2E_TMP"/cb.*.h | wc -l)
expect_eq "every 503 names max_pending_requests" "$named" 13
expect_eq "upstream_rq_pending_overflow" "$(stat cluster.limited.upstream_rq_pending_overflow)" 13
expect_eq "upstream_rq_pending_total" "$(stat cluster.limited.upstream_rq_pending_total)" 7
expect_eq "upstream_rq_pending_active back to 0" "$(stat cluster.limited.upstream_rq_pending_active)" 0
expect_eq "upstream_rq_active back to 0" "$(stat cluster.limited.upstream_rq_active)" 0
check "access log flag UO" grep -q '"GET /slow HTTP/1.1" 503 UO ' "$LOG"

# Clean shutdown with SIGTERM.
kill -TERM "$NODE_PID"
wait_exit "$NODE_PID" 10
expect_eq "node exits 0 on SIGTERM" "$EXIT_CODE" 0
check "no sanitizer report (main node)" node_log_clean main
