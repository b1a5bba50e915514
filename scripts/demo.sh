#!/bin/bash
# make demo: the user's story, driven by a control plane. The mock control
# plane (build/xdsnode-cp) serves the cluster "backend" over ADS; an
# application that opens a new TCP connection for every HTTP request sends
# 1,000 requests through xdsnode; the upstream (nginx) counts how many
# connections actually reached it. Then the control plane pushes new
# circuit breakers and a bad update (NACKed). Everything started here is
# stopped on exit or Ctrl-C.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

echo "== upstream: nginx on 127.0.0.1:18000 (private config in $tmp, stub_status at /status)"
mkdir -p "$tmp/www"
echo "hello from the upstream" >"$tmp/www/index.html"
cat >"$tmp/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:18000;
        root $tmp/www;
        location = /status { stub_status; }
    }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" >"$tmp/nginx.out" 2>&1 &
pids+=($!)
accepts() { curl -s http://127.0.0.1:18000/status | awk 'NR==3 {print $1}'; }
wait_for test -n "$(accepts)" || { echo "nginx did not start"; cat "$tmp/nginx.out"; exit 1; }

cp testdata/xds/demo.yaml "$tmp/scenario.yaml"
echo "== mock control plane: xdsnode-cp --scenario testdata/xds/demo.yaml (log: $tmp/cp.log)"
"$build/xdsnode-cp" --address 127.0.0.1:0 --port-file "$tmp/cp.port" --scenario "$tmp/scenario.yaml" \
    --log "$tmp/cp.log" 2>"$tmp/cp.err" &
pids+=($!)
wait_for test -s "$tmp/cp.port" || { echo "control plane did not start"; cat "$tmp/cp.err"; exit 1; }
sed "s/port_value: 15010/port_value: $(cat "$tmp/cp.port")/" testdata/demo.yaml >"$tmp/bootstrap.yaml"

echo "== xdsnode -c testdata/demo.yaml --concurrency 2 (listener 127.0.0.1:10000 -> cluster backend, from CDS/EDS)"
"$build/xdsnode" -c "$tmp/bootstrap.yaml" --concurrency 2 --admin-address-path "$tmp/admin" \
    --config-yaml 'admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}' \
    >"$tmp/node.log" 2>&1 &
pids+=($!)
wait_for test -s "$tmp/admin" || { echo "xdsnode did not start:"; cat "$tmp/node.log"; exit 1; }
admin=$(cat "$tmp/admin")
wait_for curl -sf "http://$admin/ready" || { echo "xdsnode not ready:"; tail "$tmp/node.log"; exit 1; }
echo "   ready: $(curl -s "http://$admin/ready"); cluster backend arrived over xDS, version" \
    "$(curl -s "http://$admin/config_dump" | jq -r '.configs[1].version_info')"

echo
echo "== 1,000 requests, each on a fresh client connection (curl -H 'Connection: close')"
before=$(accepts)
ok=0
for i in $(seq 1 1000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: close' http://127.0.0.1:10000/)
    [ "$code" = 200 ] && ok=$((ok + 1))
    [ $((i % 250)) -eq 0 ] && echo "   $i sent"
done
after=$(accepts)
upstream=$((after - before - 1)) # minus the first status read's own connection
echo
echo "   client connections:   1000 ($ok answered 200)"
echo "   upstream connections: $upstream  (counted by nginx stub_status)"
echo
echo "== what the node says"
curl -s "http://$admin/stats?filter=^cluster\\.backend\\.upstream_(cx_total|cx_active|rq_total|rq_2xx|rq_pending_overflow)$" | sed 's/^/   /'
curl -s "http://$admin/clusters" | grep -E '::(max_connections|max_pending_requests)::|::(cx_active|rq_total)::' |
    grep -v high_priority | sed 's/^/   /'

echo
echo "== the control plane pushes maxConnections 2, http1MaxPendingRequests 4 (version demo-2)"
cp testdata/xds/demo-v2.yaml "$tmp/scenario.yaml"
for _ in $(seq 1 50); do
    [ "$(curl -s "http://$admin/config_dump" | jq -r .configs[1].version_info)" == demo-2 ] && break
    sleep 0.1
done
curl -s "http://$admin/clusters" | grep -E 'backend::default_priority::max_(connections|pending_requests)' | sed 's/^/   /'
echo "   (max_connections is a circuit breaker, not a pool size: requests beyond the"
echo "    pending limit get 503 with x-envoy-overloaded and x-xdsnode-overflow)"

echo
echo "== the control plane pushes a bad update: the node NACKs it and keeps demo-2"
cp testdata/xds/demo-bad.yaml "$tmp/scenario.yaml"
for _ in $(seq 1 50); do jq -e 'select(.ack == false)' "$tmp/cp.log" >/dev/null 2>&1 && break; sleep 0.1; done
jq -r 'select(.ack == false) | "   NACK: \(.error_detail.message)"' "$tmp/cp.log" | head -n 1
echo "   version in force: $(curl -s "http://$admin/config_dump" | jq -r .configs[1].version_info);" \
    "a request now: $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:10000/)"

echo
echo "Where to look (admin http://$admin):"
echo "  /config_dump          bootstrap, clusters from CDS (with error_state), ?include_eds"
echo "  /clusters             hosts, circuit breakers, per-host counters (?format=json)"
echo "  /stats, /stats/prometheus   Envoy's cluster.backend.upstream_* counters"
echo "  jq . $tmp/cp.log      the xDS conversation (requests, ACKs, NACKs)"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
    read -r -p "Press Enter to stop the demo..." _
fi
curl -s -X POST "http://$admin/quitquitquit" >/dev/null
