#!/bin/bash
# make demo: starts the mock control plane and xdsnode on loopback, shows
# the configuration arriving over xDS, an update, a rejected (NACKed)
# update, and where to look. Stops everything it started on exit or ^C.
set -u
build=${1:-build}
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

cp testdata/xds/basic.yaml "$tmp/scenario.yaml"
echo "== mock control plane: build/xdsnode-cp --scenario testdata/xds/basic.yaml (log: $tmp/cp.log)"
"$build/xdsnode-cp" --address 127.0.0.1:0 --port-file "$tmp/cp.port" --scenario "$tmp/scenario.yaml" \
    --log "$tmp/cp.log" 2>"$tmp/cp.err" &
pids+=($!)
wait_for test -s "$tmp/cp.port" || { echo "control plane did not start"; cat "$tmp/cp.err"; exit 1; }
sed "s/port_value: 15010/port_value: $(cat "$tmp/cp.port")/" testdata/ads-sotw.yaml >"$tmp/bootstrap.yaml"

echo "== xdsnode -c testdata/ads-sotw.yaml (SotW ADS to the mock; log: $tmp/node.log)"
"$build/xdsnode" -c "$tmp/bootstrap.yaml" --admin-address-path "$tmp/admin" \
    --config-yaml 'admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}' \
    >"$tmp/node.log" 2>&1 &
pids+=($!)
wait_for test -s "$tmp/admin" || { echo "xdsnode did not start:"; cat "$tmp/node.log"; exit 1; }
admin=$(cat "$tmp/admin")
wait_for curl -sf "http://$admin/ready"
echo "   admin: http://$admin   /ready: $(curl -s "http://$admin/ready")"

clusters() {
    curl -s "http://$admin/config_dump" | jq -r '.configs[1] |
      "   version_info: \(.version_info)",
      (.dynamic_active_clusters[] | "   active  \(.cluster.name // "-")  version=\(.version_info // "-")\(if .error_state then "  REJECTED: " + .error_state.details else "" end)"),
      (.dynamic_warming_clusters[]? | "   warming \(.cluster.name)")'
}
echo
echo "== clusters that arrived over CDS (/config_dump)"
clusters
echo "== endpoints that arrived over EDS (/config_dump?include_eds)"
curl -s "http://$admin/config_dump?include_eds" | jq -r '.configs[2].dynamic_endpoint_configs[].endpoint_config |
    "   \(.cluster_name): \([.endpoints[]?.lb_endpoints[]?.endpoint.address.socket_address | "\(.address):\(.port_value)"] | join(" "))"'

echo
echo "== the control plane pushes v2 (one cluster changed, one removed, one added)"
cp testdata/xds/basic-v2.yaml "$tmp/scenario.yaml"
for _ in $(seq 1 50); do [ "$(curl -s "http://$admin/config_dump" | jq -r .configs[1].version_info)" == v2 ] && break; sleep 0.1; done
clusters

echo
echo "== the control plane pushes a bad update: the node NACKs it and keeps v2"
cp testdata/xds/bad-cluster.yaml "$tmp/scenario.yaml"
for _ in $(seq 1 50); do jq -e 'select(.ack == false)' "$tmp/cp.log" >/dev/null 2>&1 && break; sleep 0.1; done
echo "   NACK seen by the control plane:"
jq -r 'select(.ack == false) | "     \(.error_detail.message)"' "$tmp/cp.log" | head -n 1
clusters

echo
echo "== stats (/stats?filter=cds|control_plane)"
curl -s "http://$admin/stats?filter=cluster_manager.cds|control_plane|active_clusters" | sed 's/^/   /'
echo
echo "Where to look: http://$admin/config_dump, /config_dump?include_eds, /stats,"
echo "  /stats/prometheus, /server_info, /ready; the control plane's conversation:"
echo "  jq . $tmp/cp.log"
if [ -t 0 ] && [ -z "${CI:-}" ]; then
    read -r -p "Press Enter to stop the demo..." _
fi
curl -s -X POST "http://$admin/quitquitquit" >/dev/null
