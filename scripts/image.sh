#!/usr/bin/env bash
# Builds the host's container image without a container engine or a base image: the host
# binary, the C libraries it links (from this machine), a passwd entry for its non-root user and
# CA certificates, as one layer of an OCI image archive (controlplane/ociimage). The layout,
# entrypoint, user and default arguments are those of deploy/Dockerfile's image.
#
#   scripts/image.sh [--binary PATH] [--name REFERENCE] [--out FILE]
#
#   --binary  the host to put in the image (default: build the release-host profile)
#   --name    the image reference (default docker.io/library/wasm-operator:dev, which is what
#             deploy/default's `wasm-operator:dev` means)
#   --out     where to write the archive (default $WASM_OPERATOR_CACHE/images/wasm-operator.tar)
#
# Load it with `scripts/node.sh import FILE` (the local node), `ctr images import FILE`, or push
# it with any OCI tool (skopeo copy oci-archive:FILE docker://REGISTRY/...).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

binary=
name=docker.io/library/wasm-operator:dev
out=$WASM_OPERATOR_CACHE/images/wasm-operator.tar
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--name REFERENCE] [--out FILE]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  (cd "$REPO_ROOT" && cargo build --locked --profile release-host -p wasm-operator --bin wasm-operator)
  binary=$CARGO_TARGET_DIR/release-host/wasm-operator
fi
[ -x "$binary" ] || { echo "image.sh: $binary is not an executable" >&2; exit 1; }

ociimage=$(cluster_tool ociimage | tail -n1)
work=$(mktemp -d "${TMPDIR:-/tmp}/wasm-operator-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The non-root user of distroless images (65532, "nonroot"): numeric in the image's USER so
# that the kubelet can check runAsNonRoot.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$work/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$work/group"

args=(
  --name "$name" --out "$out"
  --add "$binary:/usr/local/bin/wasm-operator:0755"
  --add "$work/passwd:/etc/passwd:0644" --add "$work/group:/etc/group:0644"
  --add "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:0644"
  --dir /tmp:1777 --dir /home/nonroot:0700 --owner /home/nonroot:65532:65532
  --user 65532:65532
  --entrypoint '["/usr/local/bin/wasm-operator"]'
  --cmd '["cluster", "--metrics-addr", "0.0.0.0:9100"]'
)
# The dynamic loader and the libraries the binary links, at the paths it looks for them.
while read -r library; do
  args+=(--add "$library:$library:0755")
done < <(ldd "$binary" | sed -n 's#.*=> \(/[^ ]*\) .*#\1#p; s#^\s*\(/[^ ]*\) .*#\1#p' | sort -u)

mkdir -p "$(dirname "$out")"
"$ociimage" "${args[@]}"
echo "image $name written to $out ($(du -h "$out" | cut -f1))" >&2
echo "$out"
