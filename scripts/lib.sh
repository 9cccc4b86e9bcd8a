# Shared settings for the scripts: where expensive builds are cached between runs.
# Sourced, not run.
WASM_OPERATOR_CACHE=${WASM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasm-operator}
export WASM_OPERATOR_CACHE
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
# The cargo target directory lives in the cache so a fresh clone (CI) reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WASM_OPERATOR_CACHE/target}

# use_tinygo: installs TinyGo when it is missing (scripts/tinygo.sh) and exports
# WASM_OPERATOR_TINYGO, the command the test harness builds TinyGo modules with.
use_tinygo() {
  local output
  output=$("$REPO_ROOT/scripts/tinygo.sh" install) || return
  WASM_OPERATOR_TINYGO=$(tail -n1 <<<"$output")
  export WASM_OPERATOR_TINYGO
}

# use_zig: installs Zig when it is missing (scripts/zig.sh) and exports WASM_OPERATOR_ZIG_CC, the
# C compiler (`zig cc`) the test harness builds the C operators with.
use_zig() {
  local output
  output=$("$REPO_ROOT/scripts/zig.sh" install) || return
  WASM_OPERATOR_ZIG_CC=$(tail -n1 <<<"$output")
  export WASM_OPERATOR_ZIG_CC
}

# start_private_controlplane DIR: starts a control plane that lives exactly as long as the calling
# script (tied through a pipe on its standard input, so it stops however the script ends), waits
# until it is ready and sets CONTROLPLANE_KUBECONFIG. The caller must `trap stop_private_controlplane EXIT`.
start_private_controlplane() {
  local run_dir=$1 bin
  mkdir -p "$run_dir"
  bin=$("$REPO_ROOT/scripts/controlplane.sh" build | tail -n1)
  CONTROLPLANE_BIN=$bin
  CONTROLPLANE_RUN_DIR=$run_dir
  coproc CONTROLPLANE { exec "$bin" run --dir "$run_dir/data" --kubeconfig "$run_dir/kubeconfig" --exit-on-stdin-close >"$run_dir/controlplane.log" 2>&1; }
  local start=$SECONDS
  wait_for_file "the control plane" "$CONTROLPLANE_PID" "$run_dir/kubeconfig" "$run_dir/controlplane.log" 120
  echo "control plane ready in $((SECONDS - start))s" >&2
  CONTROLPLANE_KUBECONFIG=$run_dir/kubeconfig
}

stop_private_controlplane() {
  # Closing its standard input asks it to shut down; wait so no process or port is left behind.
  [ -n "${CONTROLPLANE_PID:-}" ] || return 0
  exec {CONTROLPLANE[1]}>&- 2>/dev/null || true
  wait "$CONTROLPLANE_PID" 2>/dev/null || true
}

# install_debian_packages WHO PACKAGE...: installs the packages that are missing (as root), or
# says how to (otherwise). WHO names the script in its messages.
install_debian_packages() {
  local who=$1 missing=() package
  shift
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$who: needs these Debian packages: ${missing[*]}" >&2
    echo "$who: install them with: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo "$who: installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cluster_tool PACKAGE: builds (or reuses) a program of the controlplane/ Go module (`.` for the
# control plane itself, `node`, `pause`, `ociimage`) and prints its path. Each is cached under
# $WASM_OPERATOR_CACHE/controlplane/<name>-<hash of its sources, the module's go.sum and Go's
# version>, so only a change to what it is built from rebuilds it.
cluster_tool() {
  local package=$1 name key bin
  name=$package
  [ "$package" = . ] && name=controlplane
  # Symbols stripped: the binaries are large and nobody debugs them from a stack trace here.
  # The small tools are static so that they run alone in an image.
  # The Kubernetes components report the module's version (a Node's kubelet version, `kubectl
  # version`) instead of v0.0.0.
  local k8s_version
  k8s_version=$(sed -n 's#^\s*k8s.io/kubernetes \(v[0-9.]*\)$#\1#p' "$REPO_ROOT/controlplane/go.mod")
  local version_flags="-X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$k8s_version")"
  local flags=(-trimpath "-ldflags=-s -w $version_flags") cgo=1
  case $package in pause | ociimage) cgo=0 ;; esac
  key=$( (cd "$REPO_ROOT/controlplane" && cat go.mod go.sum "$package"/*.go \
    && find internal -name '*.go' | sort | xargs cat && go version && echo "${flags[*]} $cgo") | sha256sum | cut -c1-16)
  bin=$WASM_OPERATOR_CACHE/controlplane/$name-$key/$name
  if [ ! -x "$bin" ]; then
    echo "building $name (k8s.io/kubernetes from Go modules: the first build of the control plane or node takes 10-20 minutes)..." >&2
    local start=$SECONDS
    mkdir -p "$(dirname "$bin")"
    (cd "$REPO_ROOT/controlplane" && CGO_ENABLED=$cgo go build "${flags[@]}" -o "$bin.tmp" "./$package")
    mv "$bin.tmp" "$bin"
    echo "built $bin in $((SECONDS - start))s" >&2
  fi
  echo "$bin"
}

# The images every node starts with (scripts/node.sh build writes them): the pod sandbox's, and
# a busybox image for trying things out.
NODE_IMAGES=("$WASM_OPERATOR_CACHE/images/pause.tar" "$WASM_OPERATOR_CACHE/images/busybox.tar")

# running_pid PID_FILE: prints the pid recorded in PID_FILE if that process is alive.
running_pid() {
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# stop_background WHAT PID_FILE SECONDS: stops the process recorded in PID_FILE with SIGTERM,
# waits until it has gone (it cleans up after itself), SIGKILLs it after SECONDS.
stop_background() {
  local what=$1 pid_file=$2 pid
  if ! pid=$(running_pid "$pid_file"); then
    echo "no $what running" >&2
    rm -f "$pid_file"
    return
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + $3))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "$what (pid $pid) did not stop within $3s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$pid_file"
  echo "$what stopped" >&2
}

# wait_for_file WHAT PID FILE LOG SECONDS: waits until FILE exists (a component's readiness
# signal), failing with the end of LOG if process PID exits first or SECONDS pass.
wait_for_file() {
  local what=$1 pid=$2 file=$3 log=$4 deadline=$((SECONDS + $5))
  until [ -f "$file" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited before it was ready; its log:" >&2
      tail -n 30 "$log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$what was not ready within $5s; see $log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# start_private_node RUN_DIR: adds a node to the control plane of start_private_controlplane,
# tied to the calling script the same way (its standard input is a pipe from this shell), and
# sets WASM_OPERATOR_NODE_DIR. The caller must call stop_private_node before
# stop_private_controlplane. Needs root (it runs containers).
start_private_node() {
  local run_dir=$1 bin image_args=() image
  bin=$("$REPO_ROOT/scripts/node.sh" build | tail -n1)
  for image in "${NODE_IMAGES[@]}"; do image_args+=(--image "$image"); done
  WASM_OPERATOR_NODE_DIR=$run_dir/node
  export WASM_OPERATOR_NODE_DIR
  local start=$SECONDS
  exec {NODE_STDIN}> >(exec "$bin" run --controlplane-dir "$CONTROLPLANE_RUN_DIR/data" \
    --dir "$WASM_OPERATOR_NODE_DIR" "${image_args[@]}" --exit-on-stdin-close >"$run_dir/node.log" 2>&1)
  NODE_PID=$!
  wait_for_file "the node" "$NODE_PID" "$WASM_OPERATOR_NODE_DIR/ready" "$run_dir/node.log" 240
  echo "node ready in $((SECONDS - start))s" >&2
}

stop_private_node() {
  [ -n "${NODE_PID:-}" ] || return 0
  # End of file on its standard input stops it; wait so that nothing it started is left.
  exec {NODE_STDIN}>&-
  while kill -0 "$NODE_PID" 2>/dev/null; do sleep 0.2; done
  NODE_PID=
}

# node_logs: the end of every component's log of the private node, printed when its tests fail
# (the node's directory, logs included, is removed when it stops).
node_logs() {
  local log
  for log in "$WASM_OPERATOR_NODE_DIR"/logs/*.log; do
    echo "== last lines of $log" >&2
    tail -n 40 "$log" >&2
  done
}

# node_leftovers DIR: after a node in DIR has stopped, names anything it left (its bridge, a
# mount under DIR, a process running from or pointing at DIR, the kubelet's pod cgroups) and
# fails if there is something.
node_leftovers() {
  local dir=$1 found=()
  ip link show wop0 >/dev/null 2>&1 && found+=("network interface wop0")
  grep -q " $dir/" /proc/self/mountinfo && found+=("mounts under $dir")
  pgrep -f -- "$dir/" >/dev/null && found+=("processes: $(pgrep -af -- "$dir/" | cut -c1-120 | tr '\n' ';')")
  compgen -G "/sys/fs/cgroup/*/kubepods" >/dev/null && found+=("kubepods cgroups")
  [ ${#found[@]} -eq 0 ] && return 0
  printf 'the node left behind: %s\n' "${found[@]}" >&2
  return 1
}
