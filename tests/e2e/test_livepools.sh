#!/bin/bash
# End to end: live pool configuration (issue 6). The mock control plane
# (build/xdsnode-cp, reloaded with SIGHUP after each scenario rewrite)
# pushes real CDS/EDS updates to the node while wrk runs against it;
# nginx upstreams count connections themselves (stub_status). Checks
# keepalive options on the live upstream sockets (getsockopt through
# pidfd_getfd), connect_timeout against a loopback listener with a full
# accept queue, max_connection_duration, circuit-breaker overflows and
# gauges, HIGH priority thresholds, max_connections lowered and raised
# under load, EDS DRAINING/UNHEALTHY hosts, /pools against nginx's own
# count, Prometheus names, and 10,000 updates under load pushed by the
# control plane itself, one per ACK (RSS flat).
set -u
. "$(dirname "$0")/lib.sh"

CP="$BUILD/xdsnode-cp"
# Ports: LIVEPOOLS_PORT_BASE+1..5 for the upstreams (default 18190),
# LIVEPOOLS_LISTEN_PORT for the node's listener (default 10191); the
# admin and control-plane ports are picked by the kernel.
BASE=${LIVEPOOLS_PORT_BASE:-18190}
UP1=$((BASE + 1))
UP2=$((BASE + 2))
HOLE=$((BASE + 3))
DEAD=$((BASE + 4))
H2UP=$((BASE + 5))
LPORT=${LIVEPOOLS_LISTEN_PORT:-10191}
URL=http://127.0.0.1:$LPORT
SCN="$E2E_TMP/scenario.yaml"
E2E_DIR=$(dirname "$0")

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
    local limit=$1
    shift
    for _ in $(seq 1 $((limit * 20))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# nginx_active PORT: open connections at nginx, minus the status read.
nginx_active() { echo $(($(curl -s "http://127.0.0.1:$1/status" | awk 'NR==1 {print $3}') - 1)); }
# nginx_requests PORT: requests nginx has served, minus the status read.
nginx_requests() { echo $(($(curl -s "http://127.0.0.1:$1/status" | awk 'NR==3 {print $3}') - 1)); }
is_eq() { [ "$("${@:2}")" == "$1" ]; }

# --- scenario ---------------------------------------------------------------

# backend_cluster MAX_CX KA_TIME KA_INTVL KA_PROBES: the backend cluster
# as one YAML flow mapping.
backend_cluster() {
    echo "{name: backend, type: EDS, connect_timeout: 1s," \
        "eds_cluster_config: {eds_config: {ads: {}, initial_fetch_timeout: 0s, resource_api_version: V3}}," \
        "circuit_breakers: {thresholds: [{max_connections: $1, max_pending_requests: 1024, track_remaining: true}]}," \
        "upstream_connection_options: {tcp_keepalive: {keepalive_time: $2, keepalive_interval: $3, keepalive_probes: $4}}}"
}

# write_scenario VERSION MAX_CX KA_TIME KA_INTVL KA_PROBES UP2_STATUS [SEQUENCE]
# UP2_STATUS: none (up2 not in backend's assignment), HEALTHY, DRAINING
# or UNHEALTHY. SEQUENCE > 0: the control plane then pushes that many more
# versions by itself, VERSION-1 .. VERSION-SEQUENCE, each once the node
# ACKed the previous one, alternating backend's max_connections 6 and 8
# (scenario.proto Sequence). Writes atomically (rename), then the caller
# sends SIGHUP.
write_scenario() {
    local version=$1 max_cx=$2 ka_time=$3 ka_intvl=$4 ka_probes=$5 up2=$6 seq=${7:-0} up2_ep="" seq_yaml=""
    if [ "$up2" != none ]; then
        up2_ep="    - {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP2}}}, health_status: $up2}"
    fi
    if [ "$seq" -gt 0 ]; then
        seq_yaml="sequence:
  count: $seq
  steps:
  - clusters: [$(backend_cluster 6 "$ka_time" "$ka_intvl" "$ka_probes")]
  - clusters: [$(backend_cluster 8 "$ka_time" "$ka_intvl" "$ka_probes")]"
    fi
    cat >"$SCN.tmp" <<EOF
version: "$version"
$seq_yaml
clusters:
- $(backend_cluster "$max_cx" "$ka_time" "$ka_intvl" "$ka_probes")
- name: blackhole
  type: STATIC
  connect_timeout: 0.5s
  load_assignment:
    cluster_name: blackhole
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $HOLE}}}}]}]
- name: shortlived
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: shortlived
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP1}}}}]}]
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      common_http_protocol_options: {max_connection_duration: 0.5s}
      explicit_http_config: {http_protocol_options: {}}
- name: onepool
  type: STATIC
  connect_timeout: 1s
  circuit_breakers: {thresholds: [{max_connection_pools: 1}]}
  load_assignment:
    cluster_name: onepool
    endpoints: [{lb_endpoints: [
      {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP1}}}},
      {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP2}}}}]}]
- name: tiny
  type: STATIC
  connect_timeout: 1s
  circuit_breakers: {thresholds: [{max_requests: 1, track_remaining: true}, {priority: HIGH, max_requests: 100}]}
  load_assignment:
    cluster_name: tiny
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP1}}}}]}]
- name: dead
  type: STATIC
  connect_timeout: 1s
  circuit_breakers: {thresholds: [{max_retries: 0}]}
  load_assignment:
    cluster_name: dead
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $DEAD}}}}]}]
- name: msd
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: msd
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP1}}}}]}]
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      common_http_protocol_options: {max_stream_duration: 0.2s}
      explicit_http_config: {http_protocol_options: {}}
- name: perhost
  type: STATIC
  connect_timeout: 1s
  circuit_breakers: {per_host_thresholds: [{max_connections: 1}]}
  load_assignment:
    cluster_name: perhost
    endpoints: [{lb_endpoints: [
      {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP1}}}},
      {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP2}}}}]}]
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      common_http_protocol_options: {idle_timeout: 0.5s}
      explicit_http_config: {http_protocol_options: {}}
- name: h2up
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: h2up
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $H2UP}}}}]}]
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {http2_protocol_options: {}}
endpoints:
- cluster_name: backend
  endpoints:
  - lb_endpoints:
    - {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UP1}}}}
$up2_ep
EOF
    mv "$SCN.tmp" "$SCN"
}

clusters_json() { curl -s "http://$ADMIN/clusters?format=json"; }
# backend_eff JQ: a field of backend's xdsnode_effective in /clusters.
backend_eff() { clusters_json | jq -c ".cluster_statuses[] | select(.name == \"backend\") | .xdsnode_effective | $1"; }
backend_max_cx() { backend_eff '.circuit_breakers[0].max_connections'; }
backend_hosts() { clusters_json | jq -r '.cluster_statuses[] | select(.name == "backend") | [.host_statuses[] | "\(.address.socket_address.port_value):\(.health_status.eds_health_status)"] | join(",")'; }
version_is() { [ "$(curl -s "http://$ADMIN/config_dump" | jq -r '.configs[1].version_info')" == "$1" ]; }

# push ARGS...: write_scenario ARGS, SIGHUP, wait until the node has the version.
push() {
    write_scenario "$@"
    kill -HUP "$CP_PID"
    wait_for 10 version_is "$1"
}

# pools_json: /pools?format=json
pools_json() { curl -s "http://$ADMIN/pools?format=json"; }
# pool_sum FILTER FIELD: sum of FIELD (jq path) over pools matching FILTER.
pool_sum() { pools_json | jq "[.pools[] | select($1) | $2] | add // 0"; }
ge() { [ "$("${@:2}")" -ge "$1" ]; }

# sockopts PORT: keepalive options of the node's sockets to PORT that have
# SO_KEEPALIVE (backend's; the other clusters set no tcp_keepalive).
sockopts() { python3 "$E2E_DIR/upstream_sockopts.py" "$NODE_PID" "$1" | grep keepalive=1; }

# --- processes -----------------------------------------------------------

# /tiny, /high, /msd/sleep and /perhost/sleep: 1 s responses, like
# /sleep; /short, /onepool and /msd/fast: files.
SLOW_LOCATIONS='location = /tiny { echo_sleep 1; echo slept; } location = /high { echo_sleep 1; echo slept; }
    location = /msd/sleep { echo_sleep 1; echo slept; } location = /perhost/sleep { echo_sleep 1; echo slept; }'
start_nginx up1 $UP1 "$SLOW_LOCATIONS" || exit 1
start_nginx up2 $UP2 "$SLOW_LOCATIONS" || exit 1
for up in up1 up2; do
    echo short >"$E2E_TMP/$up/www/short"
    echo onepool >"$E2E_TMP/$up/www/onepool"
    mkdir -p "$E2E_TMP/$up/www/msd"
    echo fast >"$E2E_TMP/$up/www/msd/fast"
done
# nghttpd (h2c, prior knowledge) serves /h2/ for cluster h2up; PUT and
# POST bodies are echoed back.
mkdir -p "$E2E_TMP/h2www/h2"
echo "hello from nghttpd" >"$E2E_TMP/h2www/h2/index.html"
head -c 262144 /dev/zero >"$E2E_TMP/h2www/h2/big"
/usr/sbin/nghttpd -a 127.0.0.1 -d "$E2E_TMP/h2www" --no-tls --echo-upload "$H2UP" >"$E2E_TMP/nghttpd.log" 2>&1 &
NODE_PIDS+=($!)
wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$H2UP" || { fail "nghttpd starts" "$(cat "$E2E_TMP/nghttpd.log")"; exit 1; }
python3 "$E2E_DIR/blackhole.py" $HOLE >"$E2E_TMP/blackhole.out" 2>&1 &
NODE_PIDS+=($!)
wait_for 5 grep -q ready "$E2E_TMP/blackhole.out" || { fail "blackhole listener" "$(cat "$E2E_TMP/blackhole.out")"; exit 1; }

write_scenario v1 8 30 5 3 none
"$CP" --address 127.0.0.1:0 --scenario "$SCN" --log "$E2E_TMP/cp.log" --port-file "$E2E_TMP/cp.port" \
    >"$E2E_TMP/cp.stderr" 2>&1 &
CP_PID=$!
NODE_PIDS+=("$CP_PID")
wait_for 5 test -s "$E2E_TMP/cp.port" || { fail "control plane starts" "$(cat "$E2E_TMP/cp.stderr")"; exit 1; }
sed "s/port_value: 15010/port_value: $(cat "$E2E_TMP/cp.port")/; s/port_value: 10191/port_value: $LPORT/" \
    testdata/e2e/livepools.yaml >"$E2E_TMP/boot.yaml"

# One worker: the circuit breaker alone bounds the connections (with N
# workers, each worker's empty pool may open one connection regardless,
# as Envoy's do).
start_node live -c "$E2E_TMP/boot.yaml" --config-yaml "$ADMIN_ANY_PORT" --concurrency 1 || exit 1
check "node ready with v1 from the control plane" wait_for 10 curl -sf "http://$ADMIN/ready"
check "v1 applied" wait_for 10 version_is v1

# --- 1. translation shown in /clusters?format=json ---------------------------

expect_eq "/clusters effective keepalive" "$(backend_eff .tcp_keepalive)" \
    '{"keepalive_time":30,"keepalive_interval":5,"keepalive_probes":3}'
expect_eq "/clusters effective timeouts and protocol" \
    "$(backend_eff '{connect_timeout_seconds, idle_timeout_seconds, max_connection_duration_seconds, upstream_protocol, lb_policy}')" \
    '{"connect_timeout_seconds":1,"idle_timeout_seconds":3600,"max_connection_duration_seconds":null,"upstream_protocol":"http1","lb_policy":"ROUND_ROBIN"}'
expect_eq "/clusters effective limits with remaining capacity" \
    "$(backend_eff '.circuit_breakers[0] | {max_connections, max_pending_requests, track_remaining, remaining}')" \
    '{"max_connections":8,"max_pending_requests":1024,"track_remaining":true,"remaining":{"connections":8,"pending_requests":1024,"requests":1024,"retries":3,"connection_pools":null}}'
expect_eq "remaining_cx gauge with track_remaining" "$(stat cluster.backend.circuit_breakers.default.remaining_cx)" 8

# --- 2. enforcement ---------------------------------------------------------

for _ in 1 2 3; do curl -s -o /dev/null "$URL/"; done
expect_eq "keepalive {30,5,3} on the live upstream socket (getsockopt)" "$(sockopts $UP1 | sort -u)" \
    "keepalive=1 idle=30 intvl=5 cnt=3"
check "ss -tnoi shows the keepalive timer on the upstream connection" \
    bash -c "ss -tnoiH state established dst 127.0.0.1:$UP1 | grep -q 'timer:(keepalive'"

resp=$(curl -s -w '\n%{http_code}' "$URL/blackhole")
expect_eq "connect_timeout: 503 connection timeout (full accept queue on loopback)" "$resp" \
    "$(printf 'upstream connect error or disconnect/reset before headers. reset reason: connection timeout\n503')"
expect_eq "upstream_cx_connect_timeout counted" "$(stat cluster.blackhole.upstream_cx_connect_timeout)" 1

before=$(nginx_accepts $UP1)
expect_eq "max_connection_duration: request served" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/short")" 200
check "max_connection_duration reached and counted" wait_for 10 is_eq 1 stat cluster.shortlived.upstream_cx_max_duration_reached
check "the idle connection closed at max_connection_duration" wait_for 10 is_eq 0 pool_sum '.cluster == "shortlived"' '.connections.total'
expect_eq "a later request opens a new connection" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/short")" 200
expect_eq "two connections for two requests" "$(nginx_new_conns $UP1 "$before")" 2

codes=$(for _ in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\n' "$URL/onepool"; done | sort | uniq -c | awk '{print $2":"$1}' | tr '\n' ' ')
expect_eq "max_connection_pools 1: the second host's pool overflows (503)" "$codes" "200:2 503:2 "
expect_eq "upstream_cx_pool_overflow counted" "$(stat cluster.onepool.upstream_cx_pool_overflow)" 2
expect_eq "circuit_breakers.default.cx_pool_open" "$(stat cluster.onepool.circuit_breakers.default.cx_pool_open)" 1

# max_requests 1 (DEFAULT): a second concurrent request overflows; HIGH has 100.
curl -s -o "$E2E_TMP/tiny1" -w '%{http_code}' "$URL/tiny" >"$E2E_TMP/tiny1.code" &
tiny_pid=$!
wait_for 5 is_eq 1 stat cluster.tiny.circuit_breakers.default.rq_open
expect_eq "rq_open gauge at the limit" "$(stat cluster.tiny.circuit_breakers.default.rq_open)" 1
expect_eq "remaining_rq 0 at the limit" "$(stat cluster.tiny.circuit_breakers.default.remaining_rq)" 0
hdrs=$(curl -s -D - -o /dev/null "$URL/tiny" | tr -d '\r')
expect_contains "max_requests overflow: 503" "$hdrs" "HTTP/1.1 503"
expect_contains "max_requests overflow names the limit" "$hdrs" "x-xdsnode-overflow: max_requests"
expect_eq "HIGH priority route uses the HIGH thresholds" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/high")" 200
wait "$tiny_pid"
expect_eq "the request holding the slot finished" "$(cat "$E2E_TMP/tiny1.code")" 200
expect_eq "upstream_rq_pending_overflow counts max_requests overflow" "$(stat cluster.tiny.upstream_rq_pending_overflow)" 1
expect_eq "rq_open back to 0" "$(stat cluster.tiny.circuit_breakers.default.rq_open)" 0

hdrs=$(curl -s -D - -o /dev/null "$URL/retry" | tr -d '\r')
expect_contains "max_retries 0: retry overflow answered 503" "$hdrs" "HTTP/1.1 503"
expect_contains "retry overflow names max_retries" "$hdrs" "x-xdsnode-overflow: max_retries"
expect_eq "upstream_rq_retry_overflow counted" "$(stat cluster.dead.upstream_rq_retry_overflow)" 1

# max_stream_duration 0.2 s (cluster msd) against 1 s responses: Envoy's
# local reply, 504 once the request is complete, 408 while its body is
# still arriving; a quick response is untouched.
expect_eq "max_stream_duration: a quick response is served" "$(curl -s "$URL/msd/fast")" "fast"
resp=$(curl -s -w '\n%{http_code}' "$URL/msd/sleep")
expect_eq "max_stream_duration reached: 504 upstream max stream duration reached" "$resp" \
    "$(printf 'upstream max stream duration reached\n504')"
mkfifo "$E2E_TMP/msd-upload"
curl -s -o "$E2E_TMP/msd-upload.out" -w '%{http_code}' -T "$E2E_TMP/msd-upload" "$URL/msd/sleep" >"$E2E_TMP/msd-upload.code" &
msd_pid=$!
exec 7>"$E2E_TMP/msd-upload"
echo "a body that never ends" >&7
check "upstream_rq_max_duration_reached counted (twice) during the upload" \
    wait_for 10 is_eq 2 stat cluster.msd.upstream_rq_max_duration_reached
exec 7>&- # curl ends its upload, then reports what it got
wait "$msd_pid"
expect_eq "max_stream_duration while the request body arrives: 408" \
    "$(cat "$E2E_TMP/msd-upload.code") $(cat "$E2E_TMP/msd-upload.out")" "408 upstream max stream duration reached"
expect_eq "max_stream_duration is per request: the connection-level counter is untouched" \
    "$(stat cluster.msd.upstream_cx_max_duration_reached)" 0

# per_host_thresholds max_connections 1 (cluster perhost, hosts up1 and
# up2, cluster max_connections 1024): four concurrent 1 s requests, two
# per host by round robin, open one connection per host; the second
# request on each host waits for the first (upstream_cx_overflow).
expect_eq "/clusters effective: max_connections_per_host" \
    "$(clusters_json | jq -c '.cluster_statuses[] | select(.name == "perhost") | .xdsnode_effective.circuit_breakers[0] | {max_connections, max_connections_per_host}')" \
    '{"max_connections":1024,"max_connections_per_host":1}'
before1=$(nginx_accepts $UP1)
before2=$(nginx_accepts $UP2)
ph_pids=()
for i in 1 2 3 4; do
    curl -s -o /dev/null -w '%{http_code}' "$URL/perhost/sleep" >"$E2E_TMP/perhost$i.code" &
    ph_pids+=($!)
done
check "per-host limit: two requests wait in the pools" wait_for 10 is_eq 2 pool_sum '.cluster == "perhost"' '.pending'
expect_eq "per-host limit: one connection to each host (/pools)" \
    "$(pools_json | jq -c '[.pools[] | select(.cluster == "perhost") | .connections.total]')" '[1,1]'
check "upstream_cx_overflow counts the per-host overflow" ge 2 stat cluster.perhost.upstream_cx_overflow
wait "${ph_pids[@]}"
expect_eq "per-host limit: every request served" "$(cat "$E2E_TMP"/perhost[1-4].code)" "200200200200"
expect_eq "per-host limit: nginx up1 and up2 each saw one new connection" \
    "$(nginx_new_conns $UP1 "$before1") $(nginx_new_conns $UP2 "$before2")" "1 1"
# (idle_timeout 0.5 s: the later checks count up2's connections at nginx)
check "perhost's idle connections close (idle_timeout)" wait_for 10 is_eq 0 pool_sum '.cluster == "perhost"' '.connections.total'
# Pools left with no connection and no request are freed (as Envoy
# removes idle pools), giving back their max_connection_pools slots.
perhost_pools() { pools_json | jq '[.pools[] | select(.cluster == "perhost")] | length'; }
check "perhost's empty pools are freed" wait_for 10 is_eq 0 perhost_pools
expect_eq "cx_pool_open back to 0 after the pools were freed" "$(stat cluster.perhost.circuit_breakers.default.cx_pool_open)" 0
expect_eq "a request after that gets a new pool" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/perhost/sleep") $(perhost_pools)" "200 1"

# --- 3. live updates -----------------------------------------------------------

# tcp_keepalive changes for new connections; the old idle ones close.
check "v2 (keepalive 60/10/4) applied" push v2 8 60 10 4 none
check "old idle connections closed after the update" wait_for 10 bash -c "! python3 '$E2E_DIR/upstream_sockopts.py' $NODE_PID $UP1 | grep -q 'keepalive=1 idle=30'"
for _ in 1 2 3; do curl -s -o /dev/null "$URL/"; done
expect_eq "new connections carry keepalive {60,10,4}" "$(sockopts $UP1 | sort -u)" "keepalive=1 idle=60 intvl=10 cnt=4"

# max_connections 8 -> 2 under load (1 s requests, 16 wrk connections):
# the requests in flight and queued at the push finish on the old pool's
# connections, which then close; new requests get the new limit. The
# count is taken while the load still runs (when wrk stops, its
# connections close and cancelled requests free connection slots).
before_total=$(nginx_accepts $UP1)
wrk -t 1 -c 16 -d 8s --timeout 30s "$URL/sleep" >"$E2E_TMP/wrk-lower.out" 2>&1 &
wrk_pid=$!
check "8 busy upstream connections before the update" wait_for 10 is_eq 8 pool_sum '.cluster == "backend"' '.connections.active'
check "queued requests wait in the pool" wait_for 10 ge 1 pool_sum '.cluster == "backend"' '.pending'
before=$(nginx_accepts $UP1)
check "v3 (max_connections 2) applied under load" push v3 2 60 10 4 none
check "new requests go to the new generation's pool" wait_for 10 ge 1 pool_sum '.cluster == "backend" and (.cluster_draining | not)' '.streams'
check "old pool drains: its in-flight and queued requests done, connections closed" \
    wait_for 20 is_eq 0 pool_sum '.cluster == "backend" and .cluster_draining' '.connections.total + .pending'
new=$(nginx_new_conns $UP1 "$before")
check "after lowering to 2: at most 2 new upstream connections under load (nginx saw $new)" test "$new" -le 2
check "the new pool holds the limit" test "$(pool_sum '.cluster == "backend"' '.connections.total')" -le 2
expect_eq "cx_open gauge follows the new limit (old generation retired)" \
    "$(stat cluster.backend.circuit_breakers.default.cx_open)" 1
expect_eq "remaining_cx follows the new limit" "$(stat cluster.backend.circuit_breakers.default.remaining_cx)" 0
wait "$wrk_pid"
check "lowering: no failed request (wrk: no non-2xx, no socket errors)" \
    bash -c "! grep -q 'Non-2xx\|Socket errors' '$E2E_TMP/wrk-lower.out'"
check "lowering: requests completed" grep -q 'requests in' "$E2E_TMP/wrk-lower.out"
echo "NOTE lowering 8 -> 2: $(nginx_new_conns $UP1 "$before_total") connections since the load began; $(awk '/requests in/' "$E2E_TMP/wrk-lower.out")"

# Raising 2 -> 8 lets queued requests proceed on more connections.
# Requests already queued in the old pool are served there (over its 2
# connections, as Envoy's draining pools do); every new request gets the
# new limit, so once that queue is gone all 8 run at once.
wrk -t 1 -c 8 -d 10s --timeout 30s "$URL/sleep" >"$E2E_TMP/wrk-raise.out" 2>&1 &
wrk_pid=$!
check "requests queue behind max_connections 2" wait_for 10 ge 3 pool_sum '.cluster == "backend"' '.pending'
check "v4 (max_connections 8) applied" push v4 8 60 10 4 none
check "after raising: more than 2 connections busy" wait_for 20 ge 3 pool_sum '.cluster == "backend" and (.cluster_draining | not)' '.connections.active'
wait "$wrk_pid"
check "raising: no failed request" bash -c "! grep -q 'Non-2xx\|Socket errors' '$E2E_TMP/wrk-raise.out'"

# /pools agrees with nginx's own count (at rest: idle keep-alive connections).
wrk -t 1 -c 4 -d 1s "$URL/" >/dev/null 2>&1
check "/pools idle connections agree with nginx (up1)" \
    wait_for 10 bash -c "[ \"\$(curl -s 'http://$ADMIN/pools?format=json' | jq '[.pools[] | select(.host == \"127.0.0.1:$UP1\") | .connections.total] | add')\" == \"\$((\$(curl -s http://127.0.0.1:$UP1/status | awk 'NR==1 {print \$3}') - 1))\" ]"
echo "NOTE /pools at rest: $(pools_json | jq -c '.totals') nginx up1 active: $(nginx_active $UP1)"
pools_text=$(curl -s "http://$ADMIN/pools")
expect_contains "/pools text form has the header" "$pools_text" "connecting"
expect_contains "/pools text form names the circuit breaker" "$pools_text" "max_connections is a circuit breaker"

# /pools lists HTTP/2 pools: connections as nghttpd's side of them
# (established sockets on its port), streams in flight while uploads
# are held open (curl -T from a FIFO: the stream lasts until the body
# ends), then under h2load.
h2_pools() { pool_sum '.cluster == "h2up" and .protocol == "http2"' "$1"; }
nghttpd_conns() { ss -tnH state established "( sport = :$H2UP )" | wc -l; }
expect_eq "HTTP/2 upstream: request proxied" "$(curl -s "$URL/h2/index.html")" "hello from nghttpd"
expect_eq "/pools lists the HTTP/2 pool with protocol http2" \
    "$(pools_json | jq -c '[.pools[] | select(.cluster == "h2up") | .protocol]')" '["http2"]'
check "/pools: one idle HTTP/2 connection, and nghttpd sees one (ss)" \
    wait_for 10 bash -c "[ \"\$(curl -s 'http://$ADMIN/pools?format=json' | jq '[.pools[] | select(.cluster == \"h2up\") | .connections.idle] | add')\" == 1 ] && [ \"\$(ss -tnH state established '( sport = :$H2UP )' | wc -l)\" == 1 ]"
upload_pids=()
for i in 1 2 3; do
    mkfifo "$E2E_TMP/upload$i"
    curl -s -o "$E2E_TMP/upload$i.out" -T "$E2E_TMP/upload$i" "$URL/h2/upload$i" &
    upload_pids+=($!)
done
exec 7>"$E2E_TMP/upload1" 8>"$E2E_TMP/upload2" 9>"$E2E_TMP/upload3"
for fd in 7 8 9; do echo "part one" >&$fd; done
check "/pools: 3 HTTP/2 streams in flight during the uploads" wait_for 10 is_eq 3 h2_pools .streams
expect_eq "/pools: the streams share one active connection" \
    "$(pools_json | jq -c '[.pools[] | select(.cluster == "h2up") | .connections | {active, idle, total}]')" \
    '[{"active":1,"idle":0,"total":1}]'
expect_eq "/pools HTTP/2 connections agree with nghttpd (ss)" "$(h2_pools .connections.total)" "$(nghttpd_conns)"
pools_text=$(curl -s "http://$ADMIN/pools")
check "/pools text form: an http2 row with 3 streams" \
    awk '$2 == "h2up" && $4 == "http2" && $10 == 3 {found=1} END {exit !found}' <<<"$pools_text"
for fd in 7 8 9; do echo "part two" >&$fd; done
exec 7>&- 8>&- 9>&-
wait "${upload_pids[@]}"
expect_eq "uploads echoed back by nghttpd through the stream" "$(cat "$E2E_TMP/upload2.out")" "$(printf 'part one\npart two')"
check "/pools: no stream in flight after the uploads" wait_for 10 is_eq 0 h2_pools .streams
h2load -n 400 -c 4 -m 8 "$URL/h2/big" >"$E2E_TMP/h2load.out" 2>&1 &
h2load_pid=$!
check "/pools shows HTTP/2 streams in flight under h2load" wait_for 20 ge 1 h2_pools .streams
h2_cx_load=$(h2_pools .connections.total)
ss_load=$(nghttpd_conns)
wait "$h2load_pid"
check "h2load: all requests succeeded" grep -q "400 succeeded, 0 failed, 0 errored" "$E2E_TMP/h2load.out"
check "/pools HTTP/2 connections agree with nghttpd after the load" \
    wait_for 10 bash -c "[ \"\$(curl -s 'http://$ADMIN/pools?format=json' | jq '[.pools[] | select(.cluster == \"h2up\") | .connections.total] | add')\" == \"\$(ss -tnH state established '( sport = :$H2UP )' | wc -l)\" ]"
echo "NOTE HTTP/2 pool under h2load: /pools $h2_cx_load connection(s), nghttpd $ss_load; after: $(pools_json | jq -c '[.pools[] | select(.cluster == "h2up")] | .[0] | {connections, streams, pending}')"

# Prometheus names with real traffic (idle connections are open now).

prom=$(curl -s "http://$ADMIN/stats/prometheus")
expect_contains "prometheus: upstream_cx_active gauge type" "$prom" "# TYPE envoy_cluster_upstream_cx_active gauge"
check "prometheus: envoy_cluster_upstream_cx_active{envoy_cluster_name=\"backend\"} > 0" \
    awk '/^envoy_cluster_upstream_cx_active\{envoy_cluster_name="backend"\} [1-9]/ {found=1} END {exit !found}' <<<"$prom"
expect_contains "prometheus: circuit breaker gauge" "$prom" 'envoy_cluster_circuit_breakers_default_remaining_cx{envoy_cluster_name="backend"}'

# EDS: up2 joins, gets idle connections, then turns DRAINING: its idle
# connections close at once and it gets no new requests.
check "v5 (up2 HEALTHY) applied" push v5 8 60 10 4 HEALTHY
check "backend has both hosts" wait_for 10 is_eq "$UP1:HEALTHY,$UP2:HEALTHY" backend_hosts
wrk -t 1 -c 4 -d 1s "$URL/" >/dev/null 2>&1
check "up2 has connections" ge 1 nginx_active $UP2
check "v6 (up2 DRAINING) applied" push v6 8 60 10 4 DRAINING
check "up2's idle connections close at once" wait_for 10 is_eq 0 nginx_active $UP2
r0=$(nginx_requests $UP2)
for _ in $(seq 1 10); do curl -s -o /dev/null "$URL/"; done
expect_eq "a DRAINING host gets no new requests" "$(nginx_requests $UP2)" "$((r0 + 1))"

# Busy connections to a host that turns UNHEALTHY finish, then close.
check "v7 (up2 HEALTHY again) applied" push v7 8 60 10 4 HEALTHY
wrk -t 1 -c 8 -d 4s --timeout 30s "$URL/sleep" >"$E2E_TMP/wrk-eds.out" 2>&1 &
wrk_pid=$!
check "up2 serves requests" wait_for 10 ge 1 pool_sum ".host == \"127.0.0.1:$UP2\"" '.streams'
check "v8 (up2 UNHEALTHY) applied under load" push v8 8 60 10 4 UNHEALTHY
check "up2's busy connections close after their responses" wait_for 10 is_eq 0 nginx_active $UP2
wait "$wrk_pid"
check "UNHEALTHY under load: no failed request" bash -c "! grep -q 'Non-2xx\|Socket errors' '$E2E_TMP/wrk-eds.out'"

# --- many updates under load: RSS flat ------------------------------------------

# N updates alternating max_connections 6/8 (each one a new cluster
# generation: new pools, old ones drained), under wrk. The control plane
# pushes them itself over the ADS stream (a scenario `sequence`): each
# version goes out once the node has ACKed the previous one. RSS is
# compared after a warm-up run of W updates (allocator arenas settle) and
# after the other N - W. Under ASan the quarantine keeps freed memory, so
# only the sanitizer report is checked there.
N=${LIVEPOOLS_UPDATES:-10000}
W=100
rss() { awk '/^VmRSS/ {print $2}' "/proc/$NODE_PID/status"; }
# acks VERSION: CDS ACKs of VERSION-k the control plane logged.
acks() {
    grep -c "\"type_url\":\"type.googleapis.com/envoy.config.cluster.v3.Cluster\",\"kind\":\"ack\",\"version_info\":\"$1-[0-9]*\"" \
        "$E2E_TMP/cp.log"
}
# run_sequence VERSION COUNT: the scenario with a sequence of COUNT, then
# waits (polling every 0.5 s) until the node reports VERSION-COUNT.
run_sequence() {
    write_scenario "$1" 8 60 10 4 none "$2"
    kill -HUP "$CP_PID"
    local limit=$(($2 / 10 + 60))
    for _ in $(seq 1 $((limit * 2))); do
        version_is "$1-$2" && return 0
        sleep 0.5
    done
    return 1
}
wrk -t 1 -c 8 -d 900s --timeout 30s "$URL/" >"$E2E_TMP/wrk-loop.out" 2>&1 &
wrk_pid=$!
mod0=$(stat cluster_manager.cluster_modified)
t0=$(date +%s)
check "warm-up: $W updates under load" run_sequence w $W
rss0=$(rss)
t1=$(date +%s)
check "$((N - W)) more updates under load" run_sequence m $((N - W))
t2=$(date +%s)
rss1=$(rss)
kill -INT "$wrk_pid"
wait "$wrk_pid"
mods=$(($(stat cluster_manager.cluster_modified) - mod0))
check "every update modified the cluster ($mods >= $N)" test "$mods" -ge "$N"
check "the control plane logged the sequences done" \
    bash -c "grep -c '\"event\":\"sequence_done\"' '$E2E_TMP/cp.log' | grep -qx 2"
acked=$(($(acks w) + $(acks m)))
expect_eq "the node ACKed each of the $N versions (CDS ACKs in the control plane's log)" "$acked" "$N"
check "update loop: no failed request" bash -c "! grep -q 'Non-2xx\|Socket errors' '$E2E_TMP/wrk-loop.out'"
echo "NOTE $N updates under load in $((t2 - t0)) s ($((t2 - t1)) s for the last $((N - W))): RSS ${rss0} kB after $W, ${rss1} kB after $N; $(awk '/requests in/' "$E2E_TMP/wrk-loop.out")"
if [ "${XDSNODE_SANITIZED:-0}" != 1 ]; then
    check "RSS flat across the updates (${rss0} -> ${rss1} kB, within 5%)" \
        test $((rss1 * 100)) -le $((rss0 * 105))
fi
check "old generations drained after the loop" wait_for 20 is_eq 0 pool_sum '.cluster_draining' '.connections.total'
check "one generation's pool left for backend" wait_for 10 is_eq 1 bash -c "curl -s 'http://$ADMIN/pools?format=json' | jq '[.pools[] | select(.cluster == \"backend\")] | length'"

quit_node
expect_eq "node exits 0 after the updates" "$EXIT_CODE" 0
check "no sanitizer report (live updates)" node_log_clean live
kill -TERM "$CP_PID"
wait_exit "$CP_PID" 10
expect_eq "control plane exits 0 after the sequences" "$EXIT_CODE" 0
check "no sanitizer report (control plane)" \
    bash -c "! grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' '$E2E_TMP/cp.stderr'"
