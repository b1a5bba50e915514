#!/bin/bash
# End to end: no 503 from idle-close races. Two nginx upstreams close
# idle keep-alive connections after 1 s: one silently (the race the node
# must survive by detecting the close or retrying once on a fresh
# connection), one announcing it with "Keep-Alive: timeout=1" (the node
# retires its connections before that). A request every 0.9-1.1 s for a
# minute through each must never fail.
set -u
. "$(dirname "$0")/lib.sh"
require_free_ports 10091 18091 18092

start_nginx silent 18091 "keepalive_timeout 1s;" || exit 1
start_nginx announced 18092 "keepalive_timeout 1s 1s;" || exit 1

cat >"$E2E_TMP/race.yaml" <<'YAML'
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: 10091}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: race
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
            - name: announced
              domains: ["announced"]
              routes: [{match: {prefix: "/"}, route: {cluster: announced}}]
            - name: silent
              domains: ["*"]
              routes: [{match: {prefix: "/"}, route: {cluster: silent}}]
  clusters:
  - name: silent
    connect_timeout: 1s
    load_assignment:
      cluster_name: silent
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18091}}}}]}]
  - name: announced
    connect_timeout: 1s
    load_assignment:
      cluster_name: announced
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 18092}}}}]}]
YAML

start_node race -c "$E2E_TMP/race.yaml" --config-yaml "$ADMIN_ANY_PORT" --concurrency 1 || exit 1
check "announced upstream sends Keep-Alive: timeout=1" \
    grep -qi '^keep-alive: timeout=1' <(curl -s -D - -o /dev/null http://127.0.0.1:18092/)

# hammer HOST: a request every 0.9-1.1 s for 60 s; prints the status codes.
hammer() {
    local end=$((SECONDS + 60))
    while [ "$SECONDS" -lt "$end" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' -H "Host: $1" http://127.0.0.1:10091/
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.3f", 0.9 + (r % 201) / 1000 }')"
    done
}
hammer silent >"$E2E_TMP/silent.codes" &
p1=$!
hammer announced >"$E2E_TMP/announced.codes" &
p2=$!
wait "$p1" "$p2"

n=$(wc -l <"$E2E_TMP/silent.codes")
bad=$(grep -vc '^200$' "$E2E_TMP/silent.codes")
check "silent upstream: $n requests in a minute" test "$n" -ge 50
expect_eq "silent upstream: no failed request" "$bad" 0
n=$(wc -l <"$E2E_TMP/announced.codes")
bad=$(grep -vc '^200$' "$E2E_TMP/announced.codes")
check "announced upstream: $n requests in a minute" test "$n" -ge 50
expect_eq "announced upstream: no failed request" "$bad" 0
five=$(stat cluster.silent.upstream_rq_5xx)
expect_eq "no 5xx counted (silent)" "${five:-0}" 0
retired=$(stat cluster.announced.upstream_cx_idle_timeout)
check "Keep-Alive: timeout=1 connections retired by the node ($retired)" test "${retired:-0}" -ge 1
echo "NOTE silent: upstream_rq_retry=$(stat cluster.silent.upstream_rq_retry) upstream_cx_destroy_remote=$(stat cluster.silent.upstream_cx_destroy_remote)"

quit_node
expect_eq "node exits 0" "$EXIT_CODE" 0
check "no sanitizer report" node_log_clean race
