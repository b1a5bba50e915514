#!/bin/sh
# Installs the Debian packages xdsnode needs to build, test and benchmark.
# Idempotent: when every package is present it only checks and returns.
set -eu

PKGS="build-essential pkg-config make git ca-certificates
libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
libnghttp2-dev libev-dev libssl-dev libhttp-parser-dev libyaml-dev libjansson-dev
libcriterion-dev
nghttp2-client nghttp2-server curl wrk nginx-light haproxy jq bc
python3-grpcio"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

# npm fetches the pinned Envoy API protos; this image may ship Node.js with
# its own npm (not Debian's package), so look for the command.
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages:$missing (run as root to install)" >&2
    exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
