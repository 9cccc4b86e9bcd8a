#!/usr/bin/env bash
# Installs Zig, whose bundled clang and wasi-libc build the C example operators
# (operators-c/), into the project cache and prints the path of a C compiler command on the last
# line: `zig-cc`, which runs `zig cc` with its caches kept in the project cache too. `make test`
# and .ci/run call it; the first run takes about 15 seconds (a 100 MB download), later runs return
# at once. After installing, building needs no network: Zig builds wasi-libc from the sources it
# ships.
#
#   scripts/zig.sh install   install it if it is missing
#   scripts/zig.sh path      print the command's path if it is installed; exit 1 otherwise
#
# Zig is taken from PyPI's `ziglang` package (the official Zig binaries, one wheel per platform),
# installed with pip into a directory of its own: nothing outside the cache changes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The one place the version is pinned (the `ziglang` package's version is Zig's).
ZIG_VERSION=0.17.1

root=$WASM_OPERATOR_CACHE/zig-$ZIG_VERSION
command_path=$root/bin/zig-cc
# Written last: a root without it is a broken or interrupted install and is installed again.
installed_marker=$root/.installed

say() { echo "zig.sh: $*" >&2; }

install_zig() {
  command -v python3 >/dev/null || { say "python3 (with pip) is needed to install Zig"; exit 1; }
  rm -rf "$root"
  mkdir -p "$root/bin"
  say "installing Zig $ZIG_VERSION from PyPI (package ziglang) into $root"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$root/python" "ziglang==$ZIG_VERSION"
  local zig=$root/python/ziglang/zig
  [ -x "$zig" ] || { say "the ziglang package has no zig binary at $zig"; exit 1; }
  # Zig caches what it builds (wasi-libc, the first time) under the user's home by default; this
  # keeps it with the compiler, so removing the cache removes all of it.
  cat >"$command_path" <<EOT
#!/bin/sh
# \`zig cc\` of Zig $ZIG_VERSION, installed by scripts/zig.sh: a clang with wasi-libc for
# --target=wasm32-wasi.
export ZIG_GLOBAL_CACHE_DIR="$root/cache"
export ZIG_LOCAL_CACHE_DIR="$root/cache"
exec "$zig" cc "\$@"
EOT
  chmod +x "$command_path"
  say "zig version: $("$zig" version)"
  echo "$ZIG_VERSION" >"$installed_marker"
}

case ${1:-install} in
  install)
    if [ ! -f "$installed_marker" ]; then
      start=$SECONDS
      install_zig
      say "installed in $((SECONDS - start))s"
    fi
    echo "$command_path"
    ;;
  path)
    [ -f "$installed_marker" ] || { say "Zig $ZIG_VERSION is not installed: run scripts/zig.sh install"; exit 1; }
    echo "$command_path"
    ;;
  *)
    echo "usage: $0 [install|path]" >&2
    exit 2
    ;;
esac
