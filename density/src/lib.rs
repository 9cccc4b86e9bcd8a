//! The density benchmark: N instances of the ring example operator (docs/examples.md, "ring")
//! as N native processes (kube-rs, controller-runtime) or as N operators in one `wasm-operator
//! run` host (Rust, Go or TinyGo module, resident or swapped), against a control plane of the
//! run's own; per setup and N, PSS, idle CPU, one-hop latency and startup. The workload, the
//! host process and its metrics come from the soak harness (`wasm-operator-soak`).
//!
//! - [`profile`]: N and window lengths (`full` for `make bench-density`, `quick`, `test`).
//! - [`binaries`]: the host and the two native operators (density/native-rust, density/native-go).
//! - [`setup`]: the setups and one of them running; [`accounting`]: its CPU (a cgroup) and PSS.
//! - [`outputs`]: clearing and timing the rings' output objects, for startup.
//! - [`measure`]: one setup at one N; [`run`]: all of them; [`report`]: the markdown.

pub mod accounting;
pub mod binaries;
pub mod measure;
pub mod outputs;
pub mod profile;
pub mod report;
pub mod run;
pub mod setup;

pub use profile::Profile;
