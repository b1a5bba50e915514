# Shared pieces of the benchmark scripts (sourced, not run).

# cpu_ticks PID: the process's utime + stime so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_port PORT: waits up to 5 s for a listener on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "port $1 did not open" >&2
    return 1
}

# bench_nginx_head DIR: the top of an nginx.conf for a benchmark origin
# that runs in the foreground, one worker, its pid, logs and temp files in
# DIR; the caller writes its server blocks and the closing "}".
bench_nginx_head() {
    local dir=$1
    mkdir -p "$dir/tmp"
    cat <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
CONF
}

# bench_node_head PORT CLUSTER: an xdsnode (Envoy) bootstrap up to its
# "clusters:" key: admin on an ephemeral loopback port, one listener on
# 127.0.0.1:PORT whose HTTP connection manager routes everything to
# CLUSTER; the caller writes the cluster.
bench_node_head() {
    cat <<YAML
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 0}}}
static_resources:
  listeners:
  - name: bench
    address: {socket_address: {address: 127.0.0.1, port_value: $1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            virtual_hosts:
            - {name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: $2}}]}
  clusters:
YAML
}
