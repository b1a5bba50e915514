#!/bin/bash
# xds-scale: the mock control plane pushes N EDS clusters with M endpoints
# each (default 10,000 x 10 = 100,000 endpoints) to one node, over SotW and
# over Delta. Prints, per mode:
#   - seconds from the first CDS response to the ACK of the last EDS
#     response (initial push), and from a new version's CDS response to
#     the node's ACK of it (update push), from the control plane's log;
#   - resident memory per cluster: (RSS with the clusters - RSS of the same
#     node with no cluster) / N.
# Not part of make test.   Usage: bench/xds-scale.sh [BUILD] [N] [M]
set -u
build=${1:-build}
n=${2:-10000}
m=${3:-10}
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

ms_of() { # ISO time "2026-11-30T08:54:49.798Z" -> epoch ms
    local t=$1
    echo $(( $(date -u -d "${t%.*}" +%s) * 1000 + 10#$(echo "$t" | sed 's/.*\.\([0-9]*\)Z/\1/') ))
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

wait_for() { # wait_for SECONDS COMMAND...
    local limit=$1; shift
    for _ in $(seq 1 $((limit * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

start_cp() { # start_cp LOG ARGS... -> CP_PID, CP_PORT
    local log=$1; shift
    rm -f "$tmp/port"
    "$build/xdsnode-cp" --address 127.0.0.1:0 --port-file "$tmp/port" --log "$log" "$@" \
        >"$tmp/cp.err" 2>&1 &
    CP_PID=$!
    pids+=("$CP_PID")
    wait_for 60 test -s "$tmp/port" || { echo "control plane did not start"; cat "$tmp/cp.err"; exit 1; }
    CP_PORT=$(cat "$tmp/port")
}

start_node() { # start_node MODE -> NODE_PID, ADMIN
    sed "s/port_value: 15010/port_value: $CP_PORT/" "testdata/ads-$1.yaml" >"$tmp/boot.yaml"
    rm -f "$tmp/admin"
    "$build/xdsnode" -c "$tmp/boot.yaml" -l warning --concurrency 1 --admin-address-path "$tmp/admin" \
        --config-yaml 'admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}' \
        >"$tmp/node.log" 2>&1 &
    NODE_PID=$!
    pids+=("$NODE_PID")
    wait_for 10 test -s "$tmp/admin" || { echo "node did not start"; cat "$tmp/node.log"; exit 1; }
    ADMIN=$(cat "$tmp/admin")
}

stop() { kill "$@" 2>/dev/null; wait "$@" 2>/dev/null; }

# The last ACK time of a type after a given ms, and the first response time of a version.
first_response_ms() { # LOG TYPE VERSION
    ms_of "$(jq -r "select(.event==\"response\" and (.type_url|endswith(\"$2\")) and .version_info==\"$3\") | .time" "$1" | head -n1)"
}
last_ack_ms() { # LOG TYPE
    ms_of "$(jq -r "select(.event==\"request\" and .ack==true and (.type_url|endswith(\"$2\"))) | .time" "$1" | tail -n1)"
}
acked() { # LOG TYPE COUNT: at least COUNT ACKs of TYPE
    [ "$(jq -r "select(.event==\"request\" and .ack==true and (.type_url|endswith(\"$2\"))) | .time" "$1" | wc -l)" -ge "$3" ]
}

printf 'xds-scale: %d EDS clusters x %d endpoints (%d endpoints)\n' "$n" "$m" $((n * m))
for mode in sotw delta; do
    # Baseline: the same node, connected, with no cluster.
    printf 'version: "empty"\n' >"$tmp/empty.yaml"
    start_cp "$tmp/cp-empty.log" --scenario "$tmp/empty.yaml"
    start_node "$mode"
    wait_for 10 curl -sf "http://$ADMIN/ready"
    sleep 1
    base=$(rss_kb "$NODE_PID")
    stop "$NODE_PID" "$CP_PID"

    log="$tmp/cp-$mode.log"
    start_cp "$log" --generate "$n:$m"
    start_node "$mode"
    if ! wait_for 120 acked "$log" ClusterLoadAssignment 1; then
        echo "$mode: no EDS ACK within 120 s"; tail -n 5 "$tmp/node.log"; exit 1
    fi
    wait_for 120 curl -sf "http://$ADMIN/ready"
    sleep 1
    t0=$(first_response_ms "$log" Cluster gen-1)
    t1=$(last_ack_ms "$log" ClusterLoadAssignment)
    rss=$(rss_kb "$NODE_PID")
    active=$(curl -s "http://$ADMIN/stats?filter=^cluster_manager.active_clusters$" | sed 's/.*: //')

    # Update: a new version changes one endpoint per cluster.
    acks_before=$(jq -r 'select(.event=="request" and .ack==true and (.type_url|endswith("ClusterLoadAssignment"))) | .time' "$log" | wc -l)
    kill -HUP "$CP_PID"
    wait_for 120 acked "$log" ClusterLoadAssignment $((acks_before + 1))
    sleep 1
    u0=$(ms_of "$(jq -r 'select(.event=="response" and .version_info!="gen-1" and .version_info!=null) | .time' "$log" | head -n1)")
    u1=$(last_ack_ms "$log" ClusterLoadAssignment)
    printf '%-5s initial push -> last EDS ACK: %.3f s   update push -> ACK: %.3f s   active clusters: %s\n' \
        "$mode" "$(echo "($t1 - $t0) / 1000" | bc -l)" "$(echo "($u1 - $u0) / 1000" | bc -l)" "$active"
    printf '%-5s RSS %d KiB with clusters, %d KiB without: %.2f KiB per cluster\n' \
        "$mode" "$rss" "$base" "$(echo "($rss - $base) / $n" | bc -l)"
    stop "$NODE_PID" "$CP_PID"
done
