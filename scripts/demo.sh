#!/bin/bash
# make demo: the user's story. An application that opens a new TCP
# connection for every HTTP request sends 1,000 requests through xdsnode;
# the upstream (nginx) counts how many connections actually reached it.
# Static clusters from testdata/demo.yaml stand in for the control plane
# until the xDS client lands. Everything started here is stopped on exit
# or Ctrl-C.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
node="" ; ngx=""
cleanup() {
    [ -n "$node" ] && kill "$node" 2>/dev/null
    [ -n "$ngx" ] && kill "$ngx" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
ngx=$!
accepts() { curl -s http://127.0.0.1:18000/status | awk 'NR==3 {print $1}'; }
for _ in $(seq 1 100); do [ -n "$(accepts)" ] && break; sleep 0.05; done

echo "== xdsnode -c testdata/demo.yaml --concurrency 2 (listener 127.0.0.1:10000 -> cluster backend)"
"$build/xdsnode" -c testdata/demo.yaml --concurrency 2 --admin-address-path "$tmp/admin" \
    --config-yaml 'admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}' \
    >"$tmp/node.log" 2>&1 &
node=$!
for _ in $(seq 1 100); do [ -s "$tmp/admin" ] && break; sleep 0.05; done
if [ ! -s "$tmp/admin" ]; then
    echo "xdsnode did not start:"; cat "$tmp/node.log"; exit 1
fi
admin=$(cat "$tmp/admin")

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
curl -s "http://$admin/stats?filter=^cluster\\.backend\\.upstream_(cx_total|cx_active|rq_total|rq_2xx|rq_pending_overflow)$"
echo
curl -s "http://$admin/clusters" | grep -E '::(cx_active|cx_total|rq_total|health_flags)::'
echo
echo "Where to look (admin http://$admin):"
echo "  /clusters             hosts, circuit breakers, per-host counters (?format=json)"
echo "  /stats                Envoy's cluster.backend.upstream_* counters"
echo "  /config_dump          the bootstrap and clusters as Envoy prints them"
echo "Node log: $tmp/node.log"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
    read -r -p "Press Enter to stop the demo..." _
fi
curl -s -X POST "http://$admin/quitquitquit" >/dev/null
wait "$node"
echo "xdsnode exited with $?"
node=""
