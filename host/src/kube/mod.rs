//! The host's side of Kubernetes: kind discovery, shared watches with their caches, cached
//! reads, and the proxy that executes operators' requests.
pub mod absence;
pub mod cache;
pub mod discovery;
pub mod requests;
pub mod selector;
pub mod watch_scope;
pub mod watches;
