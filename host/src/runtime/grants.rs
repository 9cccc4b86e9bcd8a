//! Capability grants, enforced at load: a module that imports a capability its operator was not
//! granted is refused before any of its code runs (docs/abi.md, Imports).
//!
//! The capabilities a module uses are read from its import section by validation
//! ([`ModuleInfo::capabilities`](wasm_operator_abi::ModuleInfo)); what an operator is granted
//! comes from its spec. Linking every import for every module and refusing calls at run time
//! would let a module load, report Running and fail later; refusing at load says what is wrong
//! where the operator is configured.

use wasm_operator_abi::Capability;

use super::error::LoadError;
use super::module::LoadedModule;

/// The capabilities an operator with HTTP allowlist `allow_http` is granted.
///
/// `kubernetes` and `log` are granted to every operator: what its Kubernetes requests may do is
/// bounded by the identity they run as (its ServiceAccount in `cluster` mode, the host's
/// credentials in `run`), and its log lines by the host. `http` is granted only with a non-empty
/// allowlist, since an operator without one could not reach anything anyway.
pub fn granted_capabilities(allow_http: &[String]) -> Vec<Capability> {
    let mut granted = vec![Capability::Kubernetes, Capability::Log];
    if !allow_http.is_empty() {
        granted.push(Capability::Http);
    }
    granted
}

impl LoadedModule {
    /// Refuses the module for `operator` when it imports a capability not in `granted`.
    pub fn check_grants(&self, operator: &str, granted: &[Capability]) -> Result<(), LoadError> {
        let missing: Vec<Capability> = self
            .info()
            .capabilities
            .iter()
            .copied()
            .filter(|capability| !granted.contains(capability))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let imports: Vec<String> = missing
            .iter()
            .map(|capability| format!("`{}` (capability `{capability}`)", capability.import_name()))
            .collect();
        let advice: Vec<&str> = missing
            .iter()
            .map(|capability| how_to_grant(*capability))
            .collect();
        Err(LoadError::NotGranted(format!(
            "the module imports {}, which operator `{operator}` was not granted: {}, or use a \
             module that does not import it",
            imports.join(" and "),
            advice.join("; ")
        )))
    }
}

fn how_to_grant(capability: Capability) -> &'static str {
    match capability {
        Capability::Http => {
            "give the operator an HTTP allowlist (`allowHttp` in its WasmOperator or run \
             config entry, or `--allow-http NAME=PREFIX`)"
        }
        // Granted to every operator by `granted_capabilities`; only a caller with its own
        // policy can get here.
        Capability::Kubernetes => "grant it the `kubernetes` capability",
        Capability::Log => "grant it the `log` capability",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_granted_only_with_an_allowlist() {
        assert_eq!(
            granted_capabilities(&[]),
            [Capability::Kubernetes, Capability::Log]
        );
        assert!(
            granted_capabilities(&["http://127.0.0.1:9/".to_owned()]).contains(&Capability::Http)
        );
    }
}
