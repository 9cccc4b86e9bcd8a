# Shared settings for the scripts: where expensive builds are cached between runs.
# Sourced, not run.
WASM_OPERATOR_CACHE=${WASM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasm-operator}
export WASM_OPERATOR_CACHE
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
# The cargo target directory lives in the cache so a fresh clone (CI) reuses earlier builds.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WASM_OPERATOR_CACHE/target}
