#!/bin/bash
# make demo: starts xdsnode on loopback with the static-cluster example
# bootstrap and shows where to look. The mock control plane and traffic
# through upstream pools join the demo as those issues land (see README).
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
trap 'kill $node 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

echo "== starting xdsnode -c testdata/static-clusters.yaml (admin on a free loopback port)"
"$build/xdsnode" -c testdata/static-clusters.yaml --admin-address-path "$tmp/admin" \
    --config-yaml 'admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}' \
    >"$tmp/node.log" 2>&1 &
node=$!
for _ in $(seq 1 100); do [ -s "$tmp/admin" ] && break; sleep 0.05; done
if [ ! -s "$tmp/admin" ]; then
    echo "xdsnode did not start:"; cat "$tmp/node.log"; exit 1
fi
admin=$(cat "$tmp/admin")
echo "   admin interface: http://$admin"
echo
echo "== curl http://$admin/ready"
curl -s "http://$admin/ready"
echo
echo "== static clusters, from /config_dump?resource=static_clusters"
curl -s "http://$admin/config_dump?resource=static_clusters" |
    jq -r '.configs[].cluster | "   \(.name)  connect_timeout=\(.connect_timeout // "5s (default)")  lb_policy=\(.lb_policy // "ROUND_ROBIN")  circuit_breakers=\(.circuit_breakers.thresholds // "Envoy defaults" | tostring)"'
echo
echo "== /config_dump?resource=static_clusters&mask=cluster.name,last_updated"
curl -s "http://$admin/config_dump?resource=static_clusters&mask=cluster.name,last_updated"
echo
echo "== /server_info (excerpt)"
curl -s "http://$admin/server_info" | jq '{version, state, uptime_current_epoch, node: .node.id}'
echo
echo "== /help"
curl -s "http://$admin/help"
echo
echo "Where to look: http://$admin/config_dump (full Envoy ConfigDump),"
echo "  /config_dump?resource=static_clusters, /server_info, /ready, /help."
echo "Node log: $tmp/node.log"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
    read -r -p "Press Enter to stop the demo..." _
fi
curl -s -X POST "http://$admin/quitquitquit" >/dev/null
wait "$node"
echo "xdsnode exited with $?"
