//! Test harness shared by the host's end-to-end tests and the conformance suite.
//!
//! - [`control_plane`]: a real kube-apiserver (with etcd and a few controllers) for this test
//!   process, or the one named by `WASM_OPERATOR_KUBECONFIG`.
//! - [`test_namespace`], [`apply_crd`]: per-test isolation and CRD set-up.
//! - [`wait_for`]: the only way tests wait: a condition polled until a deadline.
//! - [`guest_module`], [`go_module`], [`c_guest_module`]: build a Wasm guest of this workspace (a
//!   Rust crate; a Go package with the standard toolchain or TinyGo; a C operator with Zig's
//!   clang) and return its `.wasm` path.
mod cluster;
mod guests;
mod resources;
mod wait;

pub use cluster::{control_plane, private_control_plane, ControlPlane};
pub use guests::{
    c_guest_module, go_build, go_guest_module, go_module, guest_module, target_dir,
    tinygo_guest_module, workspace_root, GoCompiler, GRANTS_HTTP_ONLY,
};
pub use resources::{apply_crd, test_namespace, TestNamespace};
pub use wait::wait_for;
