#!/bin/bash
# End to end: TLS origination to upstreams (envoy.transport_sockets.tls with
# an UpstreamTlsContext) with real peers on 127.0.0.1: a throwaway CA,
# server and client certificates made with the openssl CLI at run time;
# nginx with `listen ... ssl` (HTTP/1.1 and `http2`, one with
# ssl_verify_client), nghttpd with TLS (-V asks for a client certificate),
# a listener that accepts TCP and never speaks TLS; curl as the client; the
# mock control plane for CDS NACKs. Ports: TLS_PORT_BASE (default 18480) + 1..12.
set -u
. "$(dirname "$0")/lib.sh"

B=${TLS_PORT_BASE:-18480}
NG_H1=$((B + 1))      # nginx TLS HTTP/1.1
NG_H2=$((B + 2))      # nginx TLS HTTP/2
NG_MTLS=$((B + 3))    # nginx TLS, ssl_verify_client on
NGHTTPD_PORT=$((B + 4))
SILENT=$((B + 5))     # accepts TCP, never answers
NG_PLAIN=$((B + 6))   # nginx plaintext (stub_status, a plaintext cluster)
NGHTTPD_V=$((B + 7))  # nghttpd -V: the handshake needs a client certificate
NG_POOL_H1=$((B + 8)) # nginx TLS HTTP/1.1, only the pooling test
NG_POOL_H2=$((B + 9)) # nginx TLS HTTP/2, only the pooling test
LISTEN=$((B + 10))
TCP_LISTEN=$((B + 11))
XDS_LISTEN=$((B + 12))
URL=http://127.0.0.1:$LISTEN
NGHTTPD=/usr/sbin/nghttpd
PEER_PIDS=()
cleanup_peers() {
    for pid in "${PEER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
}
trap 'cleanup_peers; cleanup_nginx; cleanup_e2e' EXIT

require_free_ports $NG_H1 $NG_H2 $NG_MTLS $NGHTTPD_PORT $SILENT $NG_PLAIN $NGHTTPD_V $NG_POOL_H1 \
    $NG_POOL_H2 $LISTEN $TCP_LISTEN $XDS_LISTEN

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

wait_for() {
    local limit=$1
    shift
    for _ in $(seq 1 $((limit * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# --- a throwaway PKI (ECDSA P-256), nothing committed ------------------------

PKI="$E2E_TMP/pki"
mkdir -p "$PKI/other"
gen_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# sign NAME CN EXTENSIONS: a certificate for NAME.key signed by the CA.
sign() {
    gen_key "$PKI/$1.key"
    openssl req -new -key "$PKI/$1.key" -subj "/CN=$2" -out "$PKI/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$PKI/$1.ext"
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 2 -extfile "$PKI/$1.ext" -out "$PKI/$1.pem" 2>/dev/null
}
gen_key "$PKI/ca.key"
openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=xdsnode e2e CA" -days 2 -out "$PKI/ca.pem" 2>/dev/null
gen_key "$PKI/other/ca.key"
openssl req -x509 -new -key "$PKI/other/ca.key" -subj "/CN=another CA" -days 2 \
    -out "$PKI/other/ca.pem" 2>/dev/null
sign server upstream.test "$(printf 'subjectAltName=DNS:upstream.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth')"
sign client xdsnode-client "extendedKeyUsage=clientAuth"
if [ -s "$PKI/server.pem" ] && [ -s "$PKI/client.pem" ]; then
    pass "test PKI made with the openssl CLI"
else
    fail "test PKI made with the openssl CLI" "openssl failed"
    exit 1
fi

# --- peers ------------------------------------------------------------------------

NG="$E2E_TMP/ngtls"
mkdir -p "$NG/www" "$NG/tmp"
echo "hello over tls" >"$NG/www/index.html"
cat >"$NG/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 1024; }
http {
    log_format tls '\$server_port|\$ssl_protocol|\$ssl_server_name|\$server_protocol|\$ssl_session_reused|\$ssl_client_verify|\$connection|\$status';
    access_log $NG/access.log tls;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    keepalive_requests 100000;
    ssl_certificate $PKI/server.pem;
    ssl_certificate_key $PKI/server.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $NG/www;
    server { listen 127.0.0.1:$NG_H1 ssl; }
    server { listen 127.0.0.1:$NG_H2 ssl http2; }
    server {
        listen 127.0.0.1:$NG_MTLS ssl;
        ssl_verify_client on;
        ssl_client_certificate $PKI/ca.pem;
    }
    server { listen 127.0.0.1:$NG_POOL_H1 ssl; }
    server { listen 127.0.0.1:$NG_POOL_H2 ssl http2; }
    server { listen 127.0.0.1:$NG_PLAIN; location = /status { stub_status; } }
}
CONF
nginx -c "$NG/nginx.conf" -p "$NG" >"$NG/stdout.log" 2>&1 &
NGINX_PIDS+=($!)
wait_port "$NG_PLAIN" || { fail "nginx with TLS starts" "$(cat "$NG/stdout.log" "$NG/error.log")"; exit 1; }

H2WWW="$E2E_TMP/h2www"
mkdir -p "$H2WWW"
echo "hello from nghttpd over tls" >"$H2WWW/index.html"
"$NGHTTPD" -a 127.0.0.1 -d "$H2WWW" "$NGHTTPD_PORT" "$PKI/server.key" "$PKI/server.pem" \
    >"$E2E_TMP/nghttpd.log" 2>&1 &
PEER_PIDS+=($!)
"$NGHTTPD" -V -a 127.0.0.1 -d "$H2WWW" "$NGHTTPD_V" "$PKI/server.key" "$PKI/server.pem" \
    >"$E2E_TMP/nghttpd-v.log" 2>&1 &
PEER_PIDS+=($!)

# Accepts TCP connections, holds them, never writes (a handshake that never ends).
python3 - "$SILENT" >"$E2E_TMP/silent.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
PY
PEER_PIDS+=($!)
for p in $NGHTTPD_PORT $NGHTTPD_V $SILENT; do
    wait_port "$p" || { fail "peer on $p starts" "$(cat "$E2E_TMP"/nghttpd*.log "$E2E_TMP/silent.log")"; exit 1; }
done

# --- the node -------------------------------------------------------------------------

CA="$PKI/ca.pem"
# tls CLUSTER PORT [TLS_CONTEXT_FIELDS] [CLUSTER_FIELDS]: a static cluster of
# one host on 127.0.0.1:PORT with an UpstreamTlsContext.
tls_cluster() {
    cat <<YAML
  - name: $1
    connect_timeout: ${5:-2s}
    ${4:-}
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $2}}}}]}]
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext${3:+, $3}}
YAML
}
H2_OPTS='typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, explicit_http_config: {http2_protocol_options: {}}}}'
ONE_REQUEST='typed_extension_protocol_options: {envoy.extensions.upstreams.http.v3.HttpProtocolOptions: {"@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions, common_http_protocol_options: {max_requests_per_connection: 1}, explicit_http_config: {http_protocol_options: {}}}}'
VERIFY="common_tls_context: {validation_context: {trusted_ca: {filename: $CA}}}"
SAN_DNS="common_tls_context: {validation_context: {trusted_ca: {filename: $CA}, match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: upstream.test}}]}}"
CLIENT_CERT="tls_certificates: [{certificate_chain: {filename: $PKI/client.pem}, private_key: {filename: $PKI/client.key}}]"
CLUSTERS=(tls_h1 tls_h2_nginx tls_h2_nghttpd bad_ca bad_san mtls mtls_nocert mtls_h2 mtls_h2_nocert
          resume resume13 slow_tls plain pool_h1 pool_h2)

BOOT="$E2E_TMP/tls.yaml"
{
    cat <<YAML
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: $LISTEN}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: tls
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
YAML
    for c in "${CLUSTERS[@]}"; do
        echo "            - {name: $c, domains: [$c], routes: [{match: {prefix: /}, route: {cluster: $c}}]}"
    done
    cat <<YAML
            - name: retry
              domains: [retry]
              routes: [{match: {prefix: /}, route: {cluster: bad_ca, retry_policy: {retry_on: connect-failure, num_retries: 1}}}]
  - name: tcp
    address: {socket_address: {address: 127.0.0.1, port_value: $TCP_LISTEN}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: tls_tcp
  clusters:
YAML
    tls_cluster tls_h1 "$NG_H1" "sni: upstream.test, $SAN_DNS"
    tls_cluster tls_h2_nginx "$NG_H2" "sni: upstream.test, common_tls_context: {validation_context: {trusted_ca: {filename: $CA}, match_typed_subject_alt_names: [{san_type: IP_ADDRESS, matcher: {exact: 127.0.0.1}}]}}" "$H2_OPTS"
    tls_cluster tls_h2_nghttpd "$NGHTTPD_PORT" "sni: upstream.test, $VERIFY" "$H2_OPTS"
    tls_cluster bad_ca "$NG_H1" "sni: upstream.test, common_tls_context: {validation_context: {trusted_ca: {filename: $PKI/other/ca.pem}}}"
    tls_cluster bad_san "$NG_H1" "sni: upstream.test, common_tls_context: {validation_context: {trusted_ca: {filename: $CA}, match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: wrong.test}}]}}"
    tls_cluster mtls "$NG_MTLS" "sni: upstream.test, common_tls_context: {$CLIENT_CERT, validation_context: {trusted_ca: {filename: $CA}}}"
    tls_cluster mtls_nocert "$NG_MTLS" "sni: upstream.test, $VERIFY"
    tls_cluster mtls_h2 "$NGHTTPD_V" "sni: upstream.test, common_tls_context: {$CLIENT_CERT, validation_context: {trusted_ca: {filename: $CA}}}" "$H2_OPTS"
    tls_cluster mtls_h2_nocert "$NGHTTPD_V" "sni: upstream.test, $VERIFY" "$H2_OPTS"
    tls_cluster resume "$NG_H1" "sni: resume.test, $VERIFY" "$ONE_REQUEST"
    tls_cluster resume13 "$NG_H1" "sni: resume13.test, common_tls_context: {tls_params: {tls_maximum_protocol_version: TLSv1_3}, validation_context: {trusted_ca: {filename: $CA}}}" "$ONE_REQUEST"
    tls_cluster slow_tls "$SILENT" "sni: upstream.test, $VERIFY" "" 0.5s
    tls_cluster pool_h1 "$NG_POOL_H1" "sni: upstream.test, $SAN_DNS"
    tls_cluster pool_h2 "$NG_POOL_H2" "sni: upstream.test, $SAN_DNS" "$H2_OPTS"
    tls_cluster tls_tcp "$NG_H1" "sni: tcp.test, $VERIFY"
    cat <<YAML
  - name: plain
    connect_timeout: 1s
    load_assignment:
      cluster_name: plain
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $NG_PLAIN}}}}]}]
YAML
} >"$BOOT"

out=$("$XDSNODE" --mode validate -c "$BOOT" 2>&1)
expect_contains "bootstrap with TLS clusters validates" "$out" "configuration '$BOOT' OK"

if ! start_node tls -c "$BOOT" --config-yaml "$ADMIN_ANY_PORT" --concurrency 2; then
    fail "node starts" "see log"
    exit 1
fi
wait_port "$LISTEN" || { fail "listener up" "$(cat "$E2E_TMP/tls.log")"; exit 1; }

# get HOST [PATH]: "STATUS BODY" of one request through the node.
get() { curl -s -m 10 -o "$E2E_TMP/body" -w '%{http_code}' -H "Host: $1" "$URL${2:-/}"; echo " $(cat "$E2E_TMP/body")"; }
ng_log() { grep "^$1|" "$NG/access.log"; }
cstat() { stat "cluster.$1"; }

# 1. HTTP/1.1 over TLS to nginx: CA + SAN verified, SNI sent.
expect_eq "1: HTTP/1.1 over TLS to nginx" "$(get tls_h1)" "200 hello over tls"
expect_eq "1: nginx saw TLSv1.2 (Envoy's upstream default), the configured SNI, HTTP/1.1" \
    "$(ng_log "$NG_H1" | tail -n 1 | cut -d'|' -f2-4)" "TLSv1.2|upstream.test|HTTP/1.1"
expect_eq "1: one handshake" "$(cstat tls_h1.ssl.handshake)" 1
expect_eq "1: counted under ssl.versions.TLSv1.2" "$(cstat tls_h1.ssl.versions.TLSv1.2)" 1

# 2. HTTP/2 over TLS (ALPN h2) to nginx and nghttpd.
expect_eq "2: HTTP/2 over TLS to nginx" "$(get tls_h2_nginx)" "200 hello over tls"
expect_eq "2: nginx saw HTTP/2 (ALPN h2)" "$(ng_log "$NG_H2" | tail -n 1 | cut -d'|' -f4)" "HTTP/2.0"
expect_eq "2: HTTP/2 over TLS to nghttpd" "$(get tls_h2_nghttpd)" "200 hello from nghttpd over tls"
expect_eq "2: nghttpd connection counted as HTTP/2" "$(cstat tls_h2_nghttpd.upstream_cx_http2_total)" 1
expect_eq "2: nghttpd handshake" "$(cstat tls_h2_nghttpd.ssl.handshake)" 1

# 3. Pooling: 1,000 requests, each on a new client connection, reach the
# TLS origin over at most --concurrency (2) upstream connections.
urls=()
for _ in $(seq 1 1000); do urls+=(-o /dev/null "$URL/"); done
for c in pool_h1 pool_h2; do
    port=$NG_POOL_H1
    [ "$c" == pool_h2 ] && port=$NG_POOL_H2
    codes=$(curl -s -w '%{http_code}\n' -H "Host: $c" -H 'Connection: close' "${urls[@]}" | sort | uniq -c | awk '{print $2 "x" $1}')
    expect_eq "3: $c: 1,000 requests on new client connections answered 200" "$codes" "200x1000"
    conns=$(ng_log "$port" | cut -d'|' -f7 | sort -u | wc -l)
    requests=$(ng_log "$port" | wc -l)
    expect_eq "3: $c: 1,000 requests reached the origin" "$requests" 1000
    check "3: $c: over at most 2 upstream TLS connections (got $conns)" test "$conns" -ge 1 -a "$conns" -le 2
    expect_eq "3: $c: ssl.handshake equals the upstream connections" "$(cstat $c.ssl.handshake)" "$conns"
    expect_eq "3: $c: upstream_cx_total equals them too" "$(cstat $c.upstream_cx_total)" "$conns"
done
expect_eq "3: pool_h2 connections speak HTTP/2" "$(ng_log "$NG_POOL_H2" | cut -d'|' -f4 | sort -u)" "HTTP/2.0"
pools=$(curl -s "http://$ADMIN/pools?format=json")
expect_eq "3: /pools marks TLS pools" \
    "$(jq -r '[.pools[] | select(.cluster == "pool_h2") | .tls] | unique | join(",")' <<<"$pools")" "true"

# 4. Wrong CA: 503 with the TLS reason, counted; other clusters keep serving.
resp=$(get bad_ca)
expect_contains "4: wrong CA: 503 with Envoy's body and the TLS reason" "$resp" \
    "503 upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS_error:|"
expect_contains "4: the reason says why" "$resp" \
    "certificate verify failed:verify cert failed: X509_verify_cert: certificate verification error at depth 0: unable to get local issuer certificate:TLS_error_end"
expect_eq "4: ssl.fail_verify_error" "$(cstat bad_ca.ssl.fail_verify_error)" 1
expect_eq "4: upstream_cx_connect_fail" "$(cstat bad_ca.upstream_cx_connect_fail)" 1
expect_eq "4: no handshake counted" "$(cstat bad_ca.ssl.handshake)" 0
expect_eq "4: other clusters keep serving (TLS)" "$(get tls_h1)" "200 hello over tls"
expect_eq "4: other clusters keep serving (plaintext)" "$(get plain)" "200 hello over tls"
resp=$(get retry)
expect_contains "4: connect-failure retries apply" "$resp" \
    "503 upstream connect error or disconnect/reset before headers. retried and the latest reset reason: connection failure, transport failure reason: TLS_error:"
expect_eq "4: the retry was counted" "$(cstat bad_ca.upstream_rq_retry)" 1

# 5. SAN mismatch.
resp=$(get bad_san)
expect_contains "5: SAN mismatch: 503 with the reason" "$resp" \
    "503 upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS_error:|167772294:SSL routines::certificate verify failed:verify cert failed: SAN matcher, certificate SANs are [DNS:upstream.test, IP:127.0.0.1]:TLS_error_end"
expect_eq "5: ssl.fail_verify_san" "$(cstat bad_san.ssl.fail_verify_san)" 1
expect_eq "5: ssl.fail_verify_error stays 0" "$(cstat bad_san.ssl.fail_verify_error)" 0

# 6. mTLS. nginx (ssl_verify_client on) verifies the client certificate
# against the CA; without one it completes the handshake and answers 400
# itself. nghttpd -V ends the handshake without one: a 503.
expect_eq "6: mTLS with tls_certificates to nginx" "$(get mtls)" "200 hello over tls"
expect_eq "6: nginx verified the client certificate" "$(ng_log "$NG_MTLS" | head -n 1 | cut -d'|' -f6)" "SUCCESS"
expect_eq "6: without a client certificate nginx refuses the request" "$(get mtls_nocert | head -c 3)" "400"
expect_eq "6: mTLS with tls_certificates to nghttpd -V" "$(get mtls_h2)" "200 hello from nghttpd over tls"
resp=$(get mtls_h2_nocert)
expect_contains "6: without a client certificate the handshake fails: 503" "$resp" \
    "503 upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS_error:|"
expect_eq "6: counted in ssl.connection_error" "$(cstat mtls_h2_nocert.ssl.connection_error)" 1
expect_eq "6: and as a connect failure" "$(cstat mtls_h2_nocert.upstream_cx_connect_fail)" 1

# 7. Session resumption: max_requests_per_connection 1 closes each
# connection (close_notify); the next one resumes the session.
for _ in 1 2 3 4 5; do get resume >/dev/null; done
reused=$(cstat resume.ssl.session_reused)
handshakes=$(cstat resume.ssl.handshake)
expect_eq "7: five connections, five handshakes" "$handshakes" 5
check "7: ssl.session_reused > 0 (got $reused)" test "$reused" -gt 0
expect_eq "7: every connection after the first resumed" "$reused" 4
expect_eq "7: nginx saw resumed sessions (\$ssl_session_reused = r)" \
    "$(grep '|resume.test|' "$NG/access.log" | cut -d'|' -f5 | tr -d '\n')" ".rrrr"

# TLS 1.3: the session tickets arrive after the handshake; each is used once.
for _ in 1 2 3 4 5; do get resume13 >/dev/null; done
expect_eq "7: TLS 1.3 (tls_maximum_protocol_version): nginx saw TLSv1.3, resumed after the first" \
    "$(grep '|resume13.test|' "$NG/access.log" | cut -d'|' -f2,5 | tr '\n' ' ')" \
    "TLSv1.3|. TLSv1.3|r TLSv1.3|r TLSv1.3|r TLSv1.3|r "
expect_eq "7: TLS 1.3: ssl.session_reused" "$(cstat resume13.ssl.session_reused)" 4
expect_eq "7: TLS 1.3: ssl.versions.TLSv1.3" "$(cstat resume13.ssl.versions.TLSv1.3)" 5

# 9. Handshake timeout: the TLS handshake counts inside connect_timeout.
start=$(date +%s%N)
expect_eq "9: an upstream that never speaks TLS: 503 connection timeout" "$(get slow_tls)" \
    "503 upstream connect error or disconnect/reset before headers. reset reason: connection timeout"
ms=$((($(date +%s%N) - start) / 1000000))
check "9: after connect_timeout (0.5 s; took $ms ms)" test "$ms" -ge 450 -a "$ms" -lt 3000
expect_eq "9: upstream_cx_connect_timeout" "$(cstat slow_tls.upstream_cx_connect_timeout)" 1
expect_eq "9: upstream_cx_connect_fail" "$(cstat slow_tls.upstream_cx_connect_fail)" 1

# tcp_proxy to a TLS cluster: a plaintext client reaches the TLS origin.
resp=$(curl -s -m 5 "http://127.0.0.1:$TCP_LISTEN/")
expect_eq "tcp_proxy originates TLS" "$resp" "hello over tls"
expect_eq "tcp_proxy: nginx saw the SNI" "$(grep '|tcp.test|' "$NG/access.log" | tail -n 1 | cut -d'|' -f2,3)" \
    "TLSv1.2|tcp.test"
expect_eq "tcp_proxy: handshake counted" "$(cstat tls_tcp.ssl.handshake)" 1

# Stats in both formats.
prom=$(curl -s "http://$ADMIN/stats/prometheus")
expect_contains "ssl stats in /stats/prometheus" "$prom" 'envoy_cluster_ssl_fail_verify_san{envoy_cluster_name="bad_san"} 1'
expect_contains "ssl handshake in /stats/prometheus" "$prom" 'envoy_cluster_ssl_handshake{envoy_cluster_name="tls_h2_nghttpd"} 1'
check "no ssl stats for a plaintext cluster" test -z "$(curl -s "http://$ADMIN/stats?filter=^cluster.plain.ssl")"

quit_node
expect_eq "node exits cleanly" "$EXIT_CODE" 0
check "no sanitizer report (static TLS clusters)" node_log_clean tls

# --- 8. bad configuration ----------------------------------------------------------------

sed "s#trusted_ca: {filename: $PKI/other/ca.pem}#trusted_ca: {filename: $PKI/missing.pem}#" "$BOOT" >"$E2E_TMP/bad.yaml"
out=$("$XDSNODE" -c "$E2E_TMP/bad.yaml" 2>&1); rc=$?
expect_eq "8: bootstrap with a missing trusted_ca exits 1" "$rc" 1
# bad_ca is static_resources.clusters[3]
expect_contains "8: the error names the file, the field path and the reason" "$out" \
    "error initializing configuration: $E2E_TMP/bad.yaml: static_resources.clusters[3].transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename: cannot read \"$PKI/missing.pem\": No such file or directory"

# Via CDS: a NACK naming the field, and the last good config keeps serving.
CP="$BUILD/xdsnode-cp"
SCN="$E2E_TMP/scenario.yaml"
CPLOG="$E2E_TMP/cp.log"
scenario() { # scenario VERSION TLS_FIELDS
    cat >"$SCN.tmp" <<YAML
version: "$1"
clusters:
- name: dyn_tls
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: dyn_tls
    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $NG_H1}}}}]}]
  transport_socket:
    name: envoy.transport_sockets.tls
    typed_config: {"@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext, $2}
YAML
    mv "$SCN.tmp" "$SCN"
}
scenario v1 "sni: upstream.test, $SAN_DNS"
"$CP" --address 127.0.0.1:0 --scenario "$SCN" --log "$CPLOG" --port-file "$E2E_TMP/cp.port" \
    >"$E2E_TMP/cp.stderr" 2>&1 &
CP_PID=$!
NODE_PIDS+=("$CP_PID")
wait_for 5 test -s "$E2E_TMP/cp.port" || { fail "8: control plane starts" "$(cat "$E2E_TMP/cp.stderr")"; exit 1; }
cat >"$E2E_TMP/ads.yaml" <<YAML
node: {id: tls-node, cluster: tls}
dynamic_resources:
  cds_config: {ads: {}, resource_api_version: V3}
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{envoy_grpc: {cluster_name: xds-grpc}}]
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: $XDS_LISTEN}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: xds
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            validate_clusters: false
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: dyn_tls}}]}]
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds-grpc
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $(cat "$E2E_TMP/cp.port")}}}}]}]
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
YAML
if ! start_node xds -c "$E2E_TMP/ads.yaml" --config-yaml "$ADMIN_ANY_PORT" --concurrency 1; then
    fail "8: ADS node starts" "see log"
    exit 1
fi
xget() { curl -s -m 5 -o "$E2E_TMP/xbody" -w '%{http_code}' "http://127.0.0.1:$XDS_LISTEN/"; echo " $(cat "$E2E_TMP/xbody")"; }
nacks() { jq -r 'select(.event == "request" and .kind == "nack") | .error_detail.message' "$CPLOG" 2>/dev/null; }
xds_ok() { [ "$(xget)" == "200 hello over tls" ]; }
nack_count_ge() { [ "$(nacks | wc -l)" -ge "$1" ]; }
check "8: CDS TLS cluster serves" wait_for 10 xds_ok
expect_eq "8: its handshake counted" "$(cstat dyn_tls.ssl.handshake)" 1

scenario v2 "sni: upstream.test, common_tls_context: {validation_context: {trusted_ca: {filename: $PKI/missing.pem}}}"
check "8: missing trusted_ca via CDS: NACKed" wait_for 10 nack_count_ge 1
expect_eq "8: the NACK's error_detail names the field, the file and the reason" "$(nacks | head -n 1)" \
    "Error adding/updating cluster(s) dyn_tls: transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.filename: cannot read \"$PKI/missing.pem\": No such file or directory"
expect_eq "8: the last good config keeps serving" "$(xget)" "200 hello over tls"

scenario v3 "common_tls_context: {validation_context_sds_secret_config: {name: ca, sds_config: {ads: {}}}}"
check "8: SDS via CDS: NACKed" wait_for 10 nack_count_ge 2
expect_eq "8: the NACK says SDS is not implemented" "$(nacks | sed -n 2p)" \
    "Error adding/updating cluster(s) dyn_tls: transport_socket.typed_config.common_tls_context.validation_context_sds_secret_config: unsupported: SDS secrets are not implemented"
expect_eq "8: still serving after the SDS NACK" "$(xget)" "200 hello over tls"

# A good update switches at once: the new context verifies (and refuses).
scenario v4 "sni: upstream.test, common_tls_context: {validation_context: {trusted_ca: {filename: $PKI/other/ca.pem}}}"
bad_now() { [ "$(xget | cut -c1-3)" == 503 ]; }
check "8: an accepted update uses its new TLS context" wait_for 10 bad_now
scenario v5 "sni: upstream.test, $VERIFY"
check "8: and back" wait_for 10 xds_ok
cat >"$SCN.tmp" <<YAML
version: "v6"
clusters: []
YAML
mv "$SCN.tmp" "$SCN"
gone() { [ -z "$(curl -s "http://$ADMIN/stats?filter=^cluster.dyn_tls.ssl")" ]; }
check "8: a removed cluster's ssl stats go" wait_for 10 gone
quit_node
expect_eq "8: ADS node exits cleanly" "$EXIT_CODE" 0
check "no sanitizer report (CDS TLS clusters)" node_log_clean xds
