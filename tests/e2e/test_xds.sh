#!/bin/bash
# End to end: the real node against the real mock control plane (separate
# processes, a real gRPC stream on 127.0.0.1), for State-of-the-World and
# Delta xDS: clusters and endpoints arrive, updates, NACKs with precise
# error_detail (read from the control plane's log), reconnects, removal.
set -u
. "$(dirname "$0")/lib.sh"

CP="$BUILD/xdsnode-cp"

# wait_for SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
    local limit=$1
    shift
    for _ in $(seq 1 $((limit * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

start_cp() { # start_cp PORT SCENARIO LOG -> CP_PID
    "$CP" --address "127.0.0.1:$1" --scenario "$2" --log "$3" --port-file "$E2E_TMP/cp.port" \
        >>"$E2E_TMP/cp.stderr" 2>&1 &
    CP_PID=$!
    NODE_PIDS+=("$CP_PID")
    wait_for 5 test -s "$E2E_TMP/cp.port"
}

dump() { curl -s "http://$ADMIN/config_dump$1"; }
clusters_json() { dump "" | jq -c '.configs[1]'; }
active_names() { clusters_json | jq -r '[.dynamic_active_clusters[]?.cluster.name // empty] | join(",")'; }
stat() { curl -s "http://$ADMIN/stats?filter=^$1\$" | sed 's/.*: //'; }
version_is() { [ "$(clusters_json | jq -r .version_info)" == "$1" ]; }
stat_is() { [ "$(stat "$1")" == "$2" ]; }
# cp_log_has LOG FILTER: some line of the control plane's log matches.
cp_log_has() { [ -n "$(jq -c "select($2)" "$1" 2>/dev/null | head -n 1)" ]; }

run_mode() {
    local mode=$1 scn="$E2E_TMP/scenario-$1.yaml" log="$E2E_TMP/cp-$1.log"
    rm -f "$E2E_TMP/cp.port"
    cp testdata/xds/basic.yaml "$scn"
    if ! start_cp 0 "$scn" "$log"; then
        fail "$mode: control plane starts" "$(cat "$E2E_TMP/cp.stderr")"
        return
    fi
    local port
    port=$(cat "$E2E_TMP/cp.port")
    sed "s/port_value: 15010/port_value: $port/" "testdata/ads-$mode.yaml" >"$E2E_TMP/boot-$mode.yaml"
    if ! start_node "node-$mode" -c "$E2E_TMP/boot-$mode.yaml" --config-yaml "$ADMIN_ANY_PORT"; then
        fail "$mode: node starts" "see log"
        return
    fi

    # Initial fetch: clusters and endpoints arrive.
    check "$mode: ready after the initial fetch" wait_for 10 curl -sf "http://$ADMIN/ready"
    expect_eq "$mode: dynamic active clusters" "$(active_names)" "service-a,service-b,static-c"
    expect_eq "$mode: version_info" "$(clusters_json | jq -r .version_info)" "v1"
    expect_eq "$mode: cluster content" \
        "$(clusters_json | jq -c '.dynamic_active_clusters[0].cluster | {name, connect_timeout, cb: .circuit_breakers.thresholds[0].max_connections}')" \
        '{"name":"service-a","connect_timeout":"1s","cb":100}'
    check "$mode: per-cluster version and last_updated" \
        jq -e '.dynamic_active_clusters | all(.version_info != "" and (.last_updated | test("Z$")))' \
        <<<"$(clusters_json)" >/dev/null
    expect_eq "$mode: EDS endpoints arrived" \
        "$(dump '?include_eds' | jq -r '[.configs[2].dynamic_endpoint_configs[].endpoint_config | select(.cluster_name=="service-b-endpoints") | .endpoints[].lb_endpoints[].endpoint.address.socket_address | "\(.address):\(.port_value)"] | join(",")')" \
        "$(sed -n '/cluster_name: service-b-endpoints/,$p' testdata/xds/basic.yaml | grep -o 'address: [0-9.]*, port_value: [0-9]*' | sed 's/address: //; s/, port_value: /:/' | paste -sd,)"
    expect_eq "$mode: connected_state" "$(stat control_plane.connected_state)" 1
    expect_eq "$mode: cds update_success" "$(stat cluster_manager.cds.update_success)" 1
    expect_eq "$mode: eds update_success" "$(stat cluster.service-a.update_success)" 1
    expect_eq "$mode: active_clusters gauge" "$(stat cluster_manager.active_clusters)" 4
    check "$mode: node sent user agent" cp_log_has "$log" '.node.user_agent_name == "xdsnode"'
    check "$mode: node id sent" cp_log_has "$log" '.node.id == "sidecar~127.0.0.1~demo.default~default.svc.cluster.local"'
    check "$mode: CDS ACKed" cp_log_has "$log" '.type_url == "type.googleapis.com/envoy.config.cluster.v3.Cluster" and .ack == true'
    check "$mode: EDS ACKed" cp_log_has "$log" '.type_url == "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment" and .ack == true'

    # An update changes versions and content; a removed cluster's EDS goes.
    cp testdata/xds/basic-v2.yaml "$scn"
    check "$mode: update to v2 applied" wait_for 10 version_is v2
    expect_eq "$mode: v2 clusters" "$(active_names)" "service-a,service-d,static-c"
    expect_eq "$mode: v2 content" \
        "$(clusters_json | jq -r '.dynamic_active_clusters[0].cluster.connect_timeout')" \
        "$(grep -m1 -A3 'name: service-a' testdata/xds/basic-v2.yaml | sed -n 's/.*connect_timeout: //p')"
    if [ "$mode" == sotw ]; then
        check "$mode: EDS resubscribed without the removed cluster" wait_for 5 cp_log_has "$log" \
            '.event == "request" and (.type_url | endswith("ClusterLoadAssignment")) and (.resource_names | index("service-d")) and ((.resource_names | index("service-b-endpoints")) | not)'
    else
        check "$mode: EDS unsubscribed for the removed cluster" wait_for 5 cp_log_has "$log" \
            '.event == "request" and ((.unsubscribe // []) | index("service-b-endpoints"))'
    fi
    check "$mode: removed cluster's stats go" test -z "$(curl -s "http://$ADMIN/stats?filter=^cluster\\.service-b\\.")"

    # A bad update is NACKed with a precise error_detail; v2 keeps serving.
    cp testdata/xds/bad-cluster.yaml "$scn"
    check "$mode: bad update NACKed" wait_for 10 cp_log_has "$log" '.ack == false'
    local detail
    detail=$(jq -r 'select(.ack == false) | .error_detail.message' "$log" | head -n 1)
    expect_contains "$mode: NACK names the empty name" "$detail" "<unnamed>: name: must not be empty"
    expect_contains "$mode: NACK names the EDS cluster" "$detail" \
        "service-e: eds_cluster_config: cannot create an EDS cluster without an EDS config"
    expect_eq "$mode: NACK code" "$(jq -r 'select(.ack == false) | .error_detail.code' "$log" | head -n 1)" 3
    if [ "$mode" == sotw ]; then
        expect_eq "$mode: NACK carries the last good version" \
            "$(jq -r 'select(.ack == false) | .version_info' "$log" | head -n 1)" v2
    fi
    expect_eq "$mode: old config kept" "$(active_names)" "service-a,service-d,static-c"
    expect_eq "$mode: version_info still v2" "$(clusters_json | jq -r .version_info)" v2
    expect_eq "$mode: error_state shown" \
        "$(clusters_json | jq -r '[.dynamic_active_clusters[] | select(.error_state) | .error_state.details] | join(" | ")')" \
        "name: must not be empty | eds_cluster_config: cannot create an EDS cluster without an EDS config"
    check "$mode: error_state has the failed config and time" \
        jq -e '[.dynamic_active_clusters[] | select(.error_state)] | all(.error_state.last_update_attempt and .client_status == "NACKED")' \
        <<<"$(clusters_json)" >/dev/null
    expect_eq "$mode: update_rejected" "$(stat cluster_manager.cds.update_rejected)" 1

    # The control plane dies and comes back: the node reconnects and resubscribes.
    kill -9 "$CP_PID"
    wait "$CP_PID" 2>/dev/null
    check "$mode: connected_state drops to 0" wait_for 5 stat_is control_plane.connected_state 0
    expect_eq "$mode: config kept while disconnected" "$(active_names)" "service-a,service-d,static-c"
    cp testdata/xds/basic-v2.yaml "$scn"
    local log2="$E2E_TMP/cp-$mode-2.log"
    rm -f "$E2E_TMP/cp.port"
    start_cp "$port" "$scn" "$log2"
    check "$mode: connected_state back to 1" wait_for 40 stat_is control_plane.connected_state 1
    check "$mode: node resent on the new stream" wait_for 5 cp_log_has "$log2" '.node.id != null'
    if [ "$mode" == sotw ]; then
        check "$mode: CDS resubscribed with the last accepted version" cp_log_has "$log2" \
            '.event == "request" and (.type_url | endswith("Cluster")) and .version_info == "v2"'
    else
        check "$mode: initial_resource_versions sent" cp_log_has "$log2" \
            '.event == "request" and (.initial_resource_versions | length) > 0'
    fi
    check "$mode: EDS resubscribed" wait_for 5 cp_log_has "$log2" \
        '.event == "request" and (.type_url | endswith("ClusterLoadAssignment")) and ((.resource_names // .subscribe) | index("service-a"))'
    expect_eq "$mode: clusters after reconnect" "$(active_names)" "service-a,service-d,static-c"

    curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
    wait_exit "$NODE_PID" 10
    expect_eq "$mode: node exits cleanly" "$EXIT_CODE" 0
    check "$mode: no sanitizer report" node_log_clean "node-$mode"
    kill "$CP_PID" 2>/dev/null
    wait "$CP_PID" 2>/dev/null
}

run_mode sotw
run_mode delta

# Without a control plane the node starts, serves its static config and
# reports INITIALIZING until the first CDS update.
sed "s/port_value: 15010/port_value: 1/" testdata/ads-sotw.yaml >"$E2E_TMP/boot-nocp.yaml"
if start_node nocp -c "$E2E_TMP/boot-nocp.yaml" --config-yaml "$ADMIN_ANY_PORT"; then
    r=$(http GET "http://$ADMIN/ready")
    expect_eq "no control plane: not ready" "$r" "$(printf '503\nINITIALIZING')"
    expect_eq "no control plane: connected_state 0" "$(stat control_plane.connected_state)" 0
    curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
    wait_exit "$NODE_PID" 10
    expect_eq "no control plane: exits cleanly" "$EXIT_CODE" 0
fi

# Istio-shaped clusters (metadata, filters, transport_socket_matches with a
# plaintext fallback, outlier_detection, ...) are accepted; what the node
# does not act on is kept, shown, counted and logged.
rm -f "$E2E_TMP/cp.port"
if start_cp 0 testdata/xds/istio-like.yaml "$E2E_TMP/cp-istio.log"; then
    sed "s/port_value: 15010/port_value: $(cat "$E2E_TMP/cp.port")/" testdata/ads-sotw.yaml >"$E2E_TMP/boot-istio.yaml"
    if start_node istio -c "$E2E_TMP/boot-istio.yaml" --config-yaml "$ADMIN_ANY_PORT"; then
        check "istio: ready" wait_for 10 curl -sf "http://$ADMIN/ready"
        check "istio: CDS ACKed" cp_log_has "$E2E_TMP/cp-istio.log" '(.type_url | endswith("Cluster")) and .ack == true'
        check "istio: nothing NACKed" test -z "$(jq -c 'select(.ack == false)' "$E2E_TMP/cp-istio.log")"
        expect_contains "istio: outbound clusters active" "$(active_names)" \
            "outbound|9080||ratings.default.svc.cluster.local,outbound|9080||reviews.default.svc.cluster.local"
        expect_eq "istio: fields kept but not acted on, counted" \
            "$(stat 'cluster\.outbound\|9080\|\|reviews\.default\.svc\.cluster\.local;\.xdsnode_ignored_fields')" 4
        check "istio: and logged" grep -q "reviews.default.svc.cluster.local': kept but not acted on: outlier_detection, metadata" \
            "$E2E_TMP/istio.log"
        expect_eq "istio: metadata exchange filter shown in config_dump" \
            "$(clusters_json | jq -r '[.dynamic_active_clusters[].cluster.filters[]?.name] | unique | join(",")')" \
            "istio.metadata_exchange"
        curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
        wait_exit "$NODE_PID" 10
        expect_eq "istio: node exits cleanly" "$EXIT_CODE" 0
    fi
    kill "$CP_PID" 2>/dev/null
fi

# Warming: a new EDS cluster is not routable until its assignment arrives
# (or its initial_fetch_timeout passes); the node is not ready meanwhile.
run_warming() {
    local mode=$1 scn="$E2E_TMP/warming-$1.yaml" log="$E2E_TMP/cp-warming-$1.log"
    rm -f "$E2E_TMP/cp.port"
    cp testdata/xds/warming.yaml "$scn"
    start_cp 0 "$scn" "$log" || { fail "warming $mode: control plane starts" "see stderr"; return; }
    sed "s/port_value: 15010/port_value: $(cat "$E2E_TMP/cp.port")/" "testdata/ads-$mode.yaml" >"$E2E_TMP/boot-w-$mode.yaml"
    start_node "warming-$mode" -c "$E2E_TMP/boot-w-$mode.yaml" --config-yaml "$ADMIN_ANY_PORT" ||
        { fail "warming $mode: node starts" "see log"; return; }
    warming_names() { clusters_json | jq -r '[.dynamic_warming_clusters[]?.cluster.name] | join(",")'; }
    some_warming() { [ -n "$(warming_names)" ]; }
    none_warming() { [ -z "$(warming_names)" ]; }
    check "warming $mode: withheld clusters warm" wait_for 10 some_warming
    expect_contains "warming $mode: service-a warming" "$(warming_names)" "service-a"
    check "warming $mode: service-a not active" test -z "$(active_names | tr , '\n' | grep -x service-a)"
    expect_eq "warming $mode: not ready while warming" "$(http GET "http://$ADMIN/ready")" \
        "$(printf '503\nINITIALIZING')"
    # service-slow has initial_fetch_timeout 1s: it becomes active without endpoints.
    check "warming $mode: initial_fetch_timeout activates service-slow" \
        wait_for 10 stat_is cluster.service-slow.init_fetch_timeout 1
    expect_contains "warming $mode: service-slow active" "$(active_names)" "service-slow"
    expect_eq "warming $mode: service-a still warming (0s waits forever)" "$(warming_names)" "service-a"
    expect_eq "warming $mode: warming_clusters gauge" "$(stat cluster_manager.warming_clusters)" 1
    # The control plane releases service-a's endpoints: warming ends.
    cp testdata/xds/warming-released.yaml "$scn"
    check "warming $mode: assignment ends warming" wait_for 10 none_warming
    expect_contains "warming $mode: service-a active" "$(active_names)" "service-a"
    check "warming $mode: ready once nothing warms" wait_for 5 curl -sf "http://$ADMIN/ready"
    expect_eq "warming $mode: service-a endpoints" \
        "$(dump '?include_eds' | jq -r '[.configs[2].dynamic_endpoint_configs[].endpoint_config | select(.cluster_name=="service-a") | .endpoints[].lb_endpoints | length] | add')" \
        "$(awk '/^endpoints:/{e=1} e && /cluster_name: service-a$/{f=1;next} f && /cluster_name:/{f=0} f && /socket_address:/{n++} END{print n}' testdata/xds/warming-released.yaml)"
    curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
    wait_exit "$NODE_PID" 10
    expect_eq "warming $mode: node exits cleanly" "$EXIT_CODE" 0
    kill "$CP_PID" 2>/dev/null
    wait "$CP_PID" 2>/dev/null
}

run_warming sotw
run_warming delta
