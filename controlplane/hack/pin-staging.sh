#!/usr/bin/env bash
# Regenerates the `replace` block of go.mod for a k8s.io/kubernetes version.
#
# k8s.io/kubernetes refers to its staging modules (k8s.io/api, k8s.io/apiserver, ...) as v0.0.0 and
# replaces them with local directories, which a module consumer cannot see. Each of them is published
# as v0.<minor>.<patch>; this script reads the upstream go.mod and pins every one of them.
#
# usage: hack/pin-staging.sh v1.37.2
set -euo pipefail
version=${1:?usage: $0 v1.MINOR.PATCH}
staging=v0.${version#v1.}
cd "$(dirname "$0")/.."
modfile=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
[ -f "$modfile" ] || { echo "could not download k8s.io/kubernetes@$version" >&2; exit 1; }
go mod edit -require="k8s.io/kubernetes@$version"
# Drop the replaces of an earlier run, then add one per staging module.
for old in $(go mod edit -json | sed -n 's/.*"Path": "\(k8s.io\/[^"]*\)".*/\1/p' | sort -u); do
  go mod edit -dropreplace="$old" 2>/dev/null || true
done
grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/' "$modfile" | awk '{print $1}' | while read -r mod; do
  go mod edit -replace="$mod=$mod@$staging"
done
echo "pinned $(grep -c '=> k8s.io' go.mod) staging modules at $staging for k8s.io/kubernetes $version"
