#!/bin/sh
# Fetches the official Envoy v3 API protos (with xds, googleapis and
# protoc-gen-validate) from the pinned npm package @grpc/grpc-js-xds,
# checks its integrity hash, and lays out a patched source tree for protoc-c.
#
#   scripts/fetch-protos.sh OUTDIR
#
# The tarball is cached in $XDSNODE_CACHE (default ~/.cache/xdsnode) so a
# second build needs no network. OUTDIR receives:
#   OUTDIR/envoy-api OUTDIR/xds OUTDIR/googleapis OUTDIR/protoc-gen-validate
#   OUTDIR/fix        patched copies that shadow upstream files on the
#                     include path (validate.proto, bootstrap.proto)
# Nothing here is ever committed; OUTDIR lives under build/.
set -eu

PKG="@grpc/grpc-js-xds"
VERSION="1.14.1"
INTEGRITY="sha512-F2mVXwEeMWw1znPUrp+8ykjsIOVnf7Rv+EyIvXOfz73w5tNolCnzokpLkE/d2Ehx30PJmZXqCQdMpx8DcBJohA=="
TARBALL="grpc-grpc-js-xds-$VERSION.tgz"

out=${1:?usage: fetch-protos.sh OUTDIR}
cache=${XDSNODE_CACHE:-${HOME:-/root}/.cache/xdsnode}
mkdir -p "$cache"

integrity_of() {
    printf 'sha512-%s' "$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
}

if [ ! -f "$cache/$TARBALL" ] || [ "$(integrity_of "$cache/$TARBALL")" != "$INTEGRITY" ]; then
    command -v npm >/dev/null 2>&1 || { echo "fetch-protos: npm not found (run scripts/install-deps.sh)" >&2; exit 1; }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "fetch-protos: npm pack $PKG@$VERSION"
    (cd "$tmp" && npm pack --silent "$PKG@$VERSION" >/dev/null 2>"$tmp/npm.err") || {
        cat "$tmp/npm.err" >&2; echo "fetch-protos: npm pack failed" >&2; exit 1; }
    got=$(integrity_of "$tmp/$TARBALL")
    if [ "$got" != "$INTEGRITY" ]; then
        echo "fetch-protos: integrity mismatch for $TARBALL: got $got, want $INTEGRITY" >&2
        exit 1
    fi
    mv "$tmp/$TARBALL" "$cache/$TARBALL"
fi

rm -rf "$out"
mkdir -p "$out/unpack" "$out/fix/validate" "$out/fix/envoy/config/bootstrap/v3"
tar xzf "$cache/$TARBALL" -C "$out/unpack" package/deps
for d in envoy-api xds googleapis protoc-gen-validate; do
    mv "$out/unpack/package/deps/$d" "$out/$d"
done
rm -rf "$out/unpack"

# Fix 1: the bundled validate.proto predates the envoy-api snapshot, which
# uses StringRules.ignore_empty (field 26).
awk '
    /^message StringRules \{/ { in_rules = 1 }
    in_rules && /^\}/ { print "    optional bool ignore_empty = 26;"; in_rules = 0 }
    { print }
' "$out/protoc-gen-validate/validate/validate.proto" > "$out/fix/validate/validate.proto"
grep -q 'ignore_empty = 26' "$out/fix/validate/validate.proto" || {
    echo "fetch-protos: could not patch validate.proto" >&2; exit 1; }

# Fix 2: bootstrap.v3.Runtime has a field named "base", which collides with
# the ProtobufCMessage member every protobuf-c struct starts with.
awk '
    /^import "validate\/validate.proto";/ { print; print "import \"protobuf-c/protobuf-c.proto\";"; next }
    /^message Runtime \{/ { print; print "  option (pb_c_msg).base_field_name = \"pbc_base\";"; next }
    { print }
' "$out/envoy-api/envoy/config/bootstrap/v3/bootstrap.proto" \
    > "$out/fix/envoy/config/bootstrap/v3/bootstrap.proto"
grep -q 'base_field_name' "$out/fix/envoy/config/bootstrap/v3/bootstrap.proto" || {
    echo "fetch-protos: could not patch bootstrap.proto" >&2; exit 1; }

echo "fetch-protos: $PKG@$VERSION ready in $out"
