#!/bin/bash
# End to end: command line, bootstrap loading and errors, --mode validate,
# and the admin endpoints (/config_dump, /ready, /server_info, /help,
# /quitquitquit) of a real xdsnode process, read with curl and jq.
set -u
. "$(dirname "$0")/lib.sh"

# --- command line ---------------------------------------------------------

out=$("$XDSNODE" --version 2>&1); rc=$?
expect_eq "version exits 0" "$rc" 0
expect_contains "version text" "$out" "xdsnode  version: "
out=$("$XDSNODE" --help 2>&1); rc=$?
expect_eq "help exits 0" "$rc" 0
expect_contains "help lists --config-path" "$out" "--config-path"
out=$("$XDSNODE" --bogus 2>&1); rc=$?
expect_eq "unknown flag exits 1" "$rc" 1
expect_contains "unknown flag named" "$out" 'unknown argument "--bogus"'
out=$("$XDSNODE" --concurrency x -c testdata/minimal.yaml 2>&1); rc=$?
expect_eq "bad --concurrency exits 1" "$rc" 1
out=$("$XDSNODE" --log-level loud -c testdata/minimal.yaml 2>&1); rc=$?
expect_contains "bad --log-level named" "$out" 'unknown level "loud"'
out=$("$XDSNODE" 2>&1); rc=$?
expect_eq "no config exits 1" "$rc" 1
expect_contains "no config explained" "$out" "-c <path>"

# --- --mode validate --------------------------------------------------------

for f in testdata/minimal.yaml testdata/static-clusters.yaml testdata/static-clusters.json; do
    out=$("$XDSNODE" --mode validate -c "$f" 2>&1); rc=$?
    expect_eq "validate $f exits 0" "$rc" 0
    expect_contains "validate $f says OK" "$out" "configuration '$f' OK"
done

for f in testdata/invalid/*.yaml testdata/invalid/*.json; do
    if [ -f "$f.expect" ]; then
        want=$(cat "$f.expect")
    else
        want=$(sed -n 's/^# expect: //p' "$f")
    fi
    out=$("$XDSNODE" --mode validate -c "$f" 2>&1); rc=$?
    expect_eq "validate $(basename "$f") exits 1" "$rc" 1
    expect_contains "validate $(basename "$f") error" "$out" "$f: $want"
    # Serving the same file fails the same way, before opening any socket.
    out=$("$XDSNODE" -c "$f" 2>&1); rc=$?
    expect_eq "serve $(basename "$f") exits 1" "$rc" 1
    expect_contains "serve $(basename "$f") error" "$out" "$f: $want"
done

out=$("$XDSNODE" --mode validate -c testdata/does-not-exist.yaml 2>&1); rc=$?
expect_eq "missing file exits 1" "$rc" 1
expect_contains "missing file named" "$out" "testdata/does-not-exist.yaml: cannot open"

out=$("$XDSNODE" --mode validate -c testdata/minimal.yaml \
      --config-yaml 'static_resources: {clusters: [{name: x, connect_timeout: -1s}]}' 2>&1); rc=$?
expect_eq "bad --config-yaml exits 1" "$rc" 1
expect_contains "bad --config-yaml path" "$out" "static_resources.clusters[0].connect_timeout: must be greater than 0s"

# --- serving: /ready, /config_dump ------------------------------------------

if start_node static -c testdata/static-clusters.yaml --config-yaml "$ADMIN_ANY_PORT" \
       --concurrency 2 --service-cluster from-flag; then
    pass "node starts with static clusters"
    base="http://$ADMIN"

    resp=$(http GET "$base/ready")
    expect_eq "ready is 200 LIVE" "$resp" "$(printf '200\nLIVE')"

    dump=$(curl -s "$base/config_dump")
    check "config_dump is JSON" jq -e . <<<"$dump" >/dev/null
    expect_eq "config_dump types" "$(jq -r '[.configs[]."@type"] | join(",")' <<<"$dump")" \
        "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump,type.googleapis.com/envoy.admin.v3.ClustersConfigDump,type.googleapis.com/envoy.admin.v3.ListenersConfigDump"
    expect_eq "bootstrap node id" "$(jq -r '.configs[0].bootstrap.node.id' <<<"$dump")" \
        "sidecar~127.0.0.1~demo.default~default.svc.cluster.local"
    expect_eq "--service-cluster overrides node.cluster" \
        "$(jq -r '.configs[0].bootstrap.node.cluster' <<<"$dump")" "from-flag"
    expect_eq "node metadata kept as strings" \
        "$(jq -c '.configs[0].bootstrap.node.metadata' <<<"$dump")" \
        '{"ISTIO_VERSION":"1.24.0","INSTANCE_IPS":"127.0.0.1","DNS_CAPTURE":"true"}'
    expect_eq "--config-yaml merged admin port" \
        "$(jq -r '.configs[0].bootstrap.admin.address.socket_address.port_value' <<<"$dump")" "0"
    check "bootstrap last_updated is RFC 3339" \
        grep -qE '"last_updated": "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"' <<<"$dump"
    expect_eq "static clusters sorted by name" \
        "$(jq -r '[.configs[1].static_clusters[].cluster.name] | join(",")' <<<"$dump")" \
        "backend_dns,backend_h2,backend_http1,outbound|9080||reviews.default.svc.cluster.local"
    c1='.configs[1].static_clusters[] | select(.cluster.name=="backend_http1")'
    expect_eq "cluster @type" "$(jq -r "$c1 | .cluster.\"@type\"" <<<"$dump")" \
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    expect_eq "cluster @type first" "$(jq -r "$c1 | .cluster | keys_unsorted[0]" <<<"$dump")" "@type"
    expect_eq "connect_timeout" "$(jq -r "$c1 | .cluster.connect_timeout" <<<"$dump")" "0.250s"
    expect_eq "lb_policy" "$(jq -r "$c1 | .cluster.lb_policy" <<<"$dump")" "LEAST_REQUEST"
    expect_eq "buffer limit wrapper" \
        "$(jq -r "$c1 | .cluster.per_connection_buffer_limit_bytes" <<<"$dump")" "32768"
    expect_eq "circuit breakers" \
        "$(jq -c "$c1 | .cluster.circuit_breakers.thresholds" <<<"$dump")" \
        '[{"max_connections":8,"max_pending_requests":16,"max_requests":64,"max_retries":2,"track_remaining":true},{"priority":"HIGH","max_connections":100}]'
    expect_eq "tcp keepalive" \
        "$(jq -c "$c1 | .cluster.upstream_connection_options.tcp_keepalive" <<<"$dump")" \
        '{"keepalive_probes":3,"keepalive_time":300,"keepalive_interval":30}'
    hpo="$c1 | .cluster.typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\"]"
    expect_eq "protocol options Any type" "$(jq -r "$hpo | .\"@type\"" <<<"$dump")" \
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    expect_eq "protocol options content" \
        "$(jq -c "$hpo | {common_http_protocol_options, explicit_http_config}" <<<"$dump")" \
        '{"common_http_protocol_options":{"idle_timeout":"60s","max_connection_duration":"3600s","max_requests_per_connection":100},"explicit_http_config":{"http_protocol_options":{}}}'
    expect_eq "endpoint weight and address" \
        "$(jq -c "$c1 | .cluster.load_assignment.endpoints[0].lb_endpoints[0]" <<<"$dump")" \
        '{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":18080}}},"load_balancing_weight":2}'
    expect_eq "IPv6 endpoint and priority" \
        "$(jq -c '.configs[1].static_clusters[3].cluster.load_assignment.endpoints[1] | {priority, a: .lb_endpoints[0].endpoint.address.socket_address.address}' <<<"$dump")" \
        '{"priority":1,"a":"::1"}'
    expect_eq "h2 options" \
        "$(jq -c '.configs[1].static_clusters[1].cluster.typed_extension_protocol_options[].explicit_http_config.http2_protocol_options.connection_keepalive' <<<"$dump")" \
        '{"interval":"30s","timeout":"5s"}'
    check "static cluster last_updated" \
        jq -e '.configs[1].static_clusters | all(.last_updated | test("^20[0-9-]+T[0-9:.]+Z$"))' <<<"$dump" >/dev/null
    check "pretty-printed like Envoy" grep -q '^ "configs": \[' <<<"$dump"

    # ?resource= and ?mask=, as Envoy's ConfigDumpHandler.
    r=$(curl -s "$base/config_dump?resource=static_clusters")
    expect_eq "resource=static_clusters types" \
        "$(jq -r '[.configs[]."@type"] | unique | join(",")' <<<"$r")" \
        "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster"
    expect_eq "resource=static_clusters count" "$(jq '.configs | length' <<<"$r")" 4
    r=$(curl -s "$base/config_dump?resource=static_clusters&mask=cluster.name")
    expect_eq "resource + mask into Any" "$(jq -c '.configs[0]' <<<"$r")" \
        '{"@type":"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster","cluster":{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"backend_dns"}}'
    r=$(curl -s "$base/config_dump?mask=static_clusters")
    expect_eq "mask keeps only fitting dumps" "$(jq -r '[.configs[]."@type"] | join(",")' <<<"$r")" \
        "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"
    r=$(curl -s "$base/config_dump?mask=bootstrap.node.id")
    expect_eq "mask into bootstrap" "$(jq -c '.configs[0].bootstrap' <<<"$r")" \
        '{"node":{"id":"sidecar~127.0.0.1~demo.default~default.svc.cluster.local"}}'
    r=$(http GET "$base/config_dump?resource=nothing")
    expect_eq "unknown resource 404" "$r" "$(printf '404\nnothing not found in config dump')"
    r=$(http GET "$base/config_dump?resource=bootstrap")
    expect_eq "non-repeated resource 400" "$r" \
        "$(printf '400\nbootstrap is not a repeated field. Use ?mask=bootstrap to get only this field')"
    r=$(http GET "$base/config_dump?mask=nope")
    expect_eq "mask fitting nothing 400" "$r" \
        "$(printf '400\nFieldMask nope could not be successfully applied to any configs.')"
    r=$(curl -s "$base/config_dump?resource=static_clusters&name_regex=backend_h.*")
    expect_eq "name_regex filters" "$(jq -r '[.configs[].cluster.name] | join(",")' <<<"$r")" \
        "backend_h2,backend_http1"
    r=$(curl -s "$base/config_dump?include_eds")
    expect_eq "STRICT_DNS cluster resolved (V4_ONLY)" \
        "$(jq -c '.configs[2].static_endpoint_configs[0].endpoint_config.endpoints[0].lb_endpoints[0].endpoint | {a: .address.socket_address.address, p: .address.socket_address.port_value, hostname}' <<<"$r")" \
        '{"a":"127.0.0.1","p":18082,"hostname":"localhost"}'
    expect_eq "include_eds adds endpoints" "$(jq -r '.configs[2]."@type"' <<<"$r")" \
        "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump"
    expect_eq "include_eds static endpoint" \
        "$(jq -r '.configs[2].static_endpoint_configs[2].endpoint_config | .cluster_name + " " + (.endpoints[0].lb_endpoints | length | tostring)' <<<"$r")" \
        "backend_http1 2"

    # /server_info, /help, 404 and 405.
    info=$(curl -s "$base/server_info")
    expect_eq "server_info state" "$(jq -r .state <<<"$info")" "LIVE"
    expect_eq "server_info concurrency" "$(jq -r .command_line_options.concurrency <<<"$info")" "2"
    expect_eq "server_info mode" "$(jq -r .command_line_options.mode <<<"$info")" "Serve"
    expect_eq "server_info node" "$(jq -r .node.cluster <<<"$info")" "from-flag"
    check "server_info uptime" jq -e '.uptime_current_epoch | test("^[0-9]+s$")' <<<"$info" >/dev/null
    r=$(http GET "$base/help")
    expect_contains "help lists config_dump" "$r" "/config_dump: dump current Envoy configs"
    r=$(http GET "$base/no/such/path")
    expect_contains "unknown path 404" "$r" "404"
    expect_contains "unknown path lists commands" "$r" "admin commands are:"
    r=$(http GET "$base/quitquitquit")
    expect_contains "GET quitquitquit refused" "$r" "405"
    check "still running after GET quitquitquit" kill -0 "$NODE_PID"
    r=$(http POST "$base/quitquitquit")
    expect_eq "POST quitquitquit OK" "$r" "$(printf '200\nOK')"
    wait_exit "$NODE_PID" 5
    expect_eq "quitquitquit exits 0" "$EXIT_CODE" 0
    check "no sanitizer report (static)" node_log_clean static
else
    fail "node starts with static clusters" "see log above"
fi

# --- JSON bootstrap with camelCase names -----------------------------------

if start_node json -c testdata/static-clusters.json --config-yaml "$ADMIN_ANY_PORT" \
       --service-node node-from-flag; then
    dump=$(curl -s "http://$ADMIN/config_dump")
    expect_eq "json bootstrap cluster" \
        "$(jq -c '.configs[1].static_clusters[0].cluster | {name, connect_timeout, circuit_breakers}' <<<"$dump")" \
        '{"name":"json_cluster","connect_timeout":"2s","circuit_breakers":{"thresholds":[{"max_connections":4,"max_requests":9}]}}'
    expect_eq "--service-node sets node.id" "$(jq -r '.configs[0].bootstrap.node.id' <<<"$dump")" \
        "node-from-flag"
    kill -TERM "$NODE_PID"
    wait_exit "$NODE_PID" 5
    expect_eq "SIGTERM exits 0" "$EXIT_CODE" 0
    check "no sanitizer report (json)" node_log_clean json
else
    fail "node starts with JSON bootstrap" "see log above"
fi

# --- --config-yaml alone, merged clusters ------------------------------------

if start_node merged -c testdata/minimal.yaml --config-yaml \
       "{admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}, static_resources: {clusters: [{name: from_flag, connect_timeout: 3s}]}}"; then
    dump=$(curl -s "http://$ADMIN/config_dump?resource=static_clusters")
    expect_eq "--config-yaml adds a cluster" "$(jq -r '.configs[0].cluster.name' <<<"$dump")" "from_flag"
    curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
    wait_exit "$NODE_PID" 5
    expect_eq "merged node exits 0" "$EXIT_CODE" 0
else
    fail "node starts with --config-yaml" "see log above"
fi

# --- the admin port in use is a clear start-up error ----------------------

if start_node first -c testdata/minimal.yaml --config-yaml "$ADMIN_ANY_PORT"; then
    port=${ADMIN##*:}
    out=$("$XDSNODE" -c testdata/minimal.yaml \
          --config-yaml "admin: {address: {socket_address: {address: 127.0.0.1, port_value: $port}}}" 2>&1)
    rc=$?
    expect_eq "admin port in use exits 1" "$rc" 1
    expect_contains "admin port in use explained" "$out" "127.0.0.1"
    curl -s -X POST "http://$ADMIN/quitquitquit" >/dev/null
    wait_exit "$NODE_PID" 5
fi
