#!/usr/bin/env bash
# Installs TinyGo, the third implementation of every Go operator, into the project cache and prints
# the path of its `tinygo` command on the last line. `make test`, `make build`, `make conformance`
# and .ci/run call it; the first run takes about 5 minutes, later runs return at once.
#
#   scripts/tinygo.sh install   install it if it is missing (Debian packages need root)
#   scripts/tinygo.sh path      print the command's path if it is installed; exit 1 otherwise
#
# TinyGo publishes no Debian package and no binary reachable from here, so it is built from its
# source on the Go module proxy against Debian's LLVM. Its git submodules are not in that source;
# for the wasip1 target Debian's wasi-libc sysroot and LLVM's wasm32 compiler-rt take their place.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The one place the versions are pinned. TinyGo 0.37 runs with Go 1.19-1.24 as its GOROOT; the go
# command fetches that toolchain from the module proxy (GOTOOLCHAIN).
TINYGO_VERSION=0.37.0
TINYGO_GO_TOOLCHAIN=go1.24.11
LLVM_VERSION=19
DEBIAN_PACKAGES=(llvm-$LLVM_VERSION-dev libclang-$LLVM_VERSION-dev clang-$LLVM_VERSION lld-$LLVM_VERSION
  libclang-rt-$LLVM_VERSION-dev-wasm32 wasi-libc binaryen)

root=$WASM_OPERATOR_CACHE/tinygo-$TINYGO_VERSION
command_path=$root/bin/tinygo
# Written last: a root without it is a broken or interrupted install and is built again.
installed_marker=$root/.installed

say() { echo "tinygo.sh: $*" >&2; }

# Prints the GOROOT of the Go toolchain TinyGo runs with, fetching it on first use.
go_root_for_tinygo() {
  (cd / && GOTOOLCHAIN=$TINYGO_GO_TOOLCHAIN go env GOROOT)
}

install_tinygo() {
  install_debian_packages tinygo.sh "${DEBIAN_PACKAGES[@]}"
  say "fetching Go $TINYGO_GO_TOOLCHAIN (the toolchain TinyGo $TINYGO_VERSION runs with)"
  local goroot
  goroot=$(go_root_for_tinygo)

  say "fetching TinyGo $TINYGO_VERSION's source from the Go module proxy"
  (cd / && go mod download "github.com/tinygo-org/tinygo@v$TINYGO_VERSION")
  local source
  source=$(go env GOMODCACHE)/github.com/tinygo-org/tinygo@v$TINYGO_VERSION
  rm -rf "$root"
  mkdir -p "$(dirname "$root")"
  cp -r "$source" "$root"
  chmod -R u+w "$root"

  # The submodules the wasip1 target needs, from Debian's packages.
  mkdir -p "$root/lib/wasi-libc/sysroot/lib" "$root/pkg/wasm32-unknown-wasi-generic/compiler-rt" "$root/src/net"
  ln -sfn /usr/include/wasm32-wasi "$root/lib/wasi-libc/sysroot/include"
  ln -sfn /usr/lib/wasm32-wasi "$root/lib/wasi-libc/sysroot/lib/wasm32-wasi"
  local builtins=/usr/lib/llvm-$LLVM_VERSION/lib/clang/$LLVM_VERSION/lib/wasi/libclang_rt.builtins-wasm32.a
  [ -f "$builtins" ] || { say "$builtins is missing: is libclang-rt-$LLVM_VERSION-dev-wasm32 installed?"; exit 1; }
  ln -sfn "$builtins" "$root/pkg/wasm32-unknown-wasi-generic/compiler-rt/lib.a"

  say "building TinyGo $TINYGO_VERSION against LLVM $LLVM_VERSION (about 3 minutes on 2 cores)"
  (cd "$root" && GOTOOLCHAIN=$TINYGO_GO_TOOLCHAIN GOFLAGS=-mod=mod go build -o build/tinygo .)

  # The command sets the GOROOT TinyGo must run with, whatever `go` is first on PATH, and keeps the
  # go command from switching toolchains when TinyGo asks it to list packages.
  mkdir -p "$root/bin"
  cat >"$command_path" <<EOF
#!/bin/sh
# TinyGo $TINYGO_VERSION, installed by scripts/tinygo.sh; runs with Go $TINYGO_GO_TOOLCHAIN.
export GOROOT="$goroot"
export PATH="$goroot/bin:\$PATH"
export GOTOOLCHAIN=local
exec "$root/build/tinygo" "\$@"
EOF
  chmod +x "$command_path"
  "$command_path" version >&2
  echo "$TINYGO_VERSION" >"$installed_marker"
}

case ${1:-install} in
  install)
    if [ ! -f "$installed_marker" ]; then
      start=$SECONDS
      install_tinygo
      say "installed in $((SECONDS - start))s"
    fi
    echo "$command_path"
    ;;
  path)
    [ -f "$installed_marker" ] || { say "TinyGo $TINYGO_VERSION is not installed: run scripts/tinygo.sh install"; exit 1; }
    echo "$command_path"
    ;;
  *)
    echo "usage: $0 [install|path]" >&2
    exit 2
    ;;
esac
