//! Soak and fault experiments: the real `wasm-operator` binary running the example operators
//! against a real control plane of its own, under sustained load, an API server outage, an
//! etcd restart, SIGKILLs mid-reconcile and mid-swap-out, a full and a read-only state
//! directory, a memory budget far below the operators' total, and a metrics API that is slow,
//! fails or hangs. After each, every object must match what its spec demands (computed here,
//! independently of the operators), with nothing lost.
//!
//! - [`profile`]: how big each experiment is (`full` for `make soak`, `short` inside `make test`).
//! - [`env`]: what the experiments share: the control plane, the ring workload, the host binary.
//! - [`host`]: the host as a process; [`rings`]: the workload and its convergence check;
//!   [`measure`]: metrics, memory, CPU, percentiles; [`report`]: the figures and docs/reliability.md.
//! - [`experiments`]: one file per experiment.

pub mod env;
pub mod experiments;
pub mod host;
pub mod measure;
pub mod profile;
pub mod report;
pub mod rings;

pub use env::Env;
pub use profile::Profile;
pub use report::Report;
