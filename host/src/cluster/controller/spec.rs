//! Translating a WasmOperator's spec into the manager's [`OperatorSpec`]: limits, swap policy,
//! config, and the client and read access of the operator's ServiceAccount.
use std::sync::Arc;

use serde_json::Value;

use super::Controller;
use crate::cli::run_config::{parse_bytes, parse_duration};
use crate::cluster::access::{self, ServiceAccountReadAccess};
use crate::cluster::identity::impersonating_client;
use crate::cluster::resource::WasmOperator;
use crate::cluster::status::Problem;
use crate::operator::OperatorSpec;
use crate::runtime::InstanceLimits;

impl Controller {
    pub(super) fn operator_spec(
        &self,
        namespace: &str,
        operator: &str,
        object: &WasmOperator,
        wasm: Vec<u8>,
    ) -> Result<OperatorSpec, Problem> {
        let invalid = |message: String| Problem {
            reason: "InvalidSpec",
            message,
        };
        let spec = &object.spec;
        let limits = spec.limits.clone().unwrap_or_default();
        let limits = InstanceLimits {
            max_memory_bytes: match &limits.memory {
                Some(memory) => parse_bytes(memory)
                    .map_err(|error| invalid(format!("spec.limits.memory: {error}")))?,
                None => self.settings.limits.max_memory_bytes,
            },
            call_deadline: match &limits.call_deadline {
                Some(deadline) => parse_duration(deadline)
                    .map_err(|error| invalid(format!("spec.limits.callDeadline: {error}")))?,
                None => self.settings.limits.call_deadline,
            },
        };
        let swap_after = match spec.swap.as_ref().and_then(|swap| swap.after_idle.as_ref()) {
            Some(after) => Some(
                parse_duration(after)
                    .map_err(|error| invalid(format!("spec.swap.afterIdle: {error}")))?,
            ),
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
        Ok(OperatorSpec {
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
                access::DEFAULT_TTL,
            ))),
        })
    }
}
