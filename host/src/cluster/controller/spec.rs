//! Translating a WasmOperator's spec into the manager's [`OperatorSpec`]: limits (clamped to
//! the cluster admin's [`TenantMaxima`]), swap policy, config, and the client and read access of
//! the operator's ServiceAccount.
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Controller;
use crate::cli::run_config::{format_bytes, format_duration, parse_bytes, parse_duration};
use crate::cluster::access::ServiceAccountReadAccess;
use crate::cluster::identity::impersonating_client;
use crate::cluster::resource::WasmOperator;
use crate::cluster::status::Problem;
use crate::operator::OperatorSpec;
use crate::runtime::InstanceLimits;

/// The most a tenant's WasmOperator may ask for, set by the cluster admin (flags of
/// `wasm-operator cluster`). A spec above a maximum runs with the maximum.
#[derive(Clone, Copy, Debug)]
pub struct TenantMaxima {
    pub memory_bytes: usize,
    pub call_deadline: Duration,
    /// Longest `spec.swap.afterIdle`: an idle operator is swapped out after this at the latest.
    pub swap_after_idle: Duration,
}

impl Default for TenantMaxima {
    fn default() -> Self {
        TenantMaxima {
            memory_bytes: 256 << 20,
            call_deadline: Duration::from_secs(60),
            swap_after_idle: Duration::from_secs(24 * 3600),
        }
    }
}

/// `value` or `maximum`, whichever is smaller; when clamped, says so in `notes`.
fn clamp<T: PartialOrd + Copy>(
    field: &str,
    text: &str,
    value: T,
    maximum: T,
    show: impl Fn(T) -> String,
    notes: &mut Vec<String>,
) -> T {
    if value <= maximum {
        return value;
    }
    let maximum_text = show(maximum);
    notes.push(format!(
        "{field} {text} exceeds the host maximum {maximum_text}; using {maximum_text}"
    ));
    maximum
}

impl Controller {
    /// The manager's spec, and a note for each value clamped to the host's maxima.
    pub(super) fn operator_spec(
        &self,
        namespace: &str,
        operator: &str,
        object: &WasmOperator,
        wasm: Vec<u8>,
    ) -> Result<(OperatorSpec, Vec<String>), Problem> {
        let maxima = self.settings.maxima;
        let mut notes = Vec::new();
        let invalid = |message: String| Problem {
            reason: "InvalidSpec",
            message,
        };
        let spec = &object.spec;
        let limits = spec.limits.clone().unwrap_or_default();
        let limits = InstanceLimits {
            max_memory_bytes: match &limits.memory {
                Some(memory) => {
                    let bytes = parse_bytes(memory)
                        .map_err(|error| invalid(format!("spec.limits.memory: {error}")))?;
                    clamp(
                        "spec.limits.memory",
                        memory,
                        bytes,
                        maxima.memory_bytes,
                        |bytes| format_bytes(bytes as u64),
                        &mut notes,
                    )
                }
                None => self.settings.limits.max_memory_bytes,
            },
            call_deadline: match &limits.call_deadline {
                Some(deadline) => {
                    let parsed = parse_duration(deadline)
                        .map_err(|error| invalid(format!("spec.limits.callDeadline: {error}")))?;
                    clamp(
                        "spec.limits.callDeadline",
                        deadline,
                        parsed,
                        maxima.call_deadline,
                        format_duration,
                        &mut notes,
                    )
                }
                None => self.settings.limits.call_deadline,
            },
        };
        let swap_after = match spec.swap.as_ref().and_then(|swap| swap.after_idle.as_ref()) {
            Some(after) => {
                let parsed = parse_duration(after)
                    .map_err(|error| invalid(format!("spec.swap.afterIdle: {error}")))?;
                Some(clamp(
                    "spec.swap.afterIdle",
                    after,
                    parsed,
                    maxima.swap_after_idle,
                    format_duration,
                    &mut notes,
                ))
            }
            None => None,
        };
        let config = spec
            .config
            .clone()
            .unwrap_or_else(|| Value::Object(Default::default()));
        if !config.is_object() {
            return Err(invalid("spec.config must be an object".into()));
        }
        let service_account = spec.service_account_name.as_deref().unwrap_or("default");
        let client = impersonating_client(&self.host_config, namespace, service_account).map_err(
            |message| Problem {
                reason: "LoadFailed",
                message,
            },
        )?;
        let spec = OperatorSpec {
            name: operator.to_string(),
            wasm: Arc::from(wasm),
            allow_http: spec.allow_http.clone(),
            limits,
            config,
            backoff: self.settings.backoff,
            client: Some(client),
            swap_after,
            read_access: Some(Arc::new(ServiceAccountReadAccess::new(
                self.host_client.clone(),
                namespace,
                service_account,
                self.settings.access_ttl,
            ))),
        };
        Ok((spec, notes))
    }
}
