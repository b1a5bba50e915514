#!/bin/sh
# Prints the import closure of the root protos listed in ROOTS_FILE, one
# path per line (relative to its include root), resolving imports through
# the include directories in order, as protoc does.
#
#   scripts/proto-closure.sh ROOTS_FILE INCLUDE_DIR...
set -eu
roots=${1:?usage: proto-closure.sh ROOTS_FILE INCLUDE_DIR...}
shift

find_file() {
    f=$1; shift
    for inc in "$@"; do
        if [ -f "$inc/$f" ]; then printf '%s\n' "$inc/$f"; return 0; fi
    done
    return 1
}

todo=$(grep -v '^[[:space:]]*#' "$roots" | grep -v '^[[:space:]]*$')
seen=""
while [ -n "$todo" ]; do
    next=""
    for f in $todo; do
        case " $seen " in *" $f "*) continue ;; esac
        seen="$seen $f"
        path=$(find_file "$f" "$@") || { echo "proto-closure: $f not found" >&2; exit 1; }
        imports=$(sed -n 's/^import[[:space:]]*\(public[[:space:]]*\)\{0,1\}"\([^"]*\)";.*/\2/p' "$path")
        next="$next $imports"
    done
    todo=$next
done
for f in $seen; do
    # protobuf-c's own option file ships compiled inside libprotobuf-c.
    [ "$f" = "protobuf-c/protobuf-c.proto" ] && continue
    printf '%s\n' "$f"
done | sort
