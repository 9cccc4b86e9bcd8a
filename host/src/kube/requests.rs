//! Executes a guest's [`KubeRequest`] against the API server and answers with a
//! [`HostResponse`]: the object or list exactly as the server sent it, or a [`HostError`].
//!
//! The identity is the `kube::Client` passed in, one per operator, so each operator's requests
//! go out under its own credentials (and the API server's RBAC decides). Errors map as:
//! an error answer from the API server -> `apiStatus` with the server's `Status`; an unknown kind
//! or a request that cannot be built -> `invalidRequest`; no answer -> `transport`/`timeout`.
use kube::api::{
    DeleteParams, DynamicObject, GetParams, ListParams, Patch, PatchParams, PostParams,
};
use kube::core::Request;
use kube::Resource;
use serde_json::Value;
use wasm_operator_abi::{
    HostError, HostResponse, KubeRequest, KubeStatus, PatchType, PropagationPolicy,
};

use super::discovery::{Discovery, DiscoveryError, ResolvedKind};

/// Sends `request` with `client`. `field_manager` is used for patches that name none (server-side
/// apply requires one; the operator's name is the natural choice).
pub async fn execute(
    client: &kube::Client,
    discovery: &Discovery,
    field_manager: &str,
    request: KubeRequest,
) -> HostResponse {
    match execute_inner(client, discovery, field_manager, request).await {
        Ok(value) => HostResponse::Ok(value),
        Err(error) => HostResponse::Error(error),
    }
}

async fn execute_inner(
    client: &kube::Client,
    discovery: &Discovery,
    field_manager: &str,
    request: KubeRequest,
) -> Result<Value, HostError> {
    let resolved = discovery
        .resolve(request.api_version(), request.kind())
        .await
        .map_err(discovery_error)?;
    let url_path = url_path(&resolved, &request)?;
    let builder = Request::new(url_path);
    let http_request = match request {
        KubeRequest::Get { name, .. } => builder.get(&name, &GetParams::default()),
        KubeRequest::List {
            label_selector,
            field_selector,
            ..
        } => {
            let params = ListParams {
                label_selector,
                field_selector,
                ..ListParams::default()
            };
            builder.list(&params)
        }
        KubeRequest::Create { body, .. } => {
            builder.create(&PostParams::default(), to_bytes(&body)?)
        }
        KubeRequest::Update {
            name,
            subresource,
            body,
            ..
        } => match subresource {
            Some(subresource) => builder.replace_subresource(
                &subresource,
                &name,
                &PostParams::default(),
                to_bytes(&body)?,
            ),
            None => builder.replace(&name, &PostParams::default(), to_bytes(&body)?),
        },
        KubeRequest::Patch {
            name,
            subresource,
            patch_type,
            field_manager: manager,
            force,
            body,
            ..
        } => {
            if force && patch_type != PatchType::Apply {
                return Err(HostError::invalid_request(
                    "force is only allowed with patchType \"apply\" (server-side apply); remove it",
                ));
            }
            let params = PatchParams {
                field_manager: Some(manager.unwrap_or_else(|| field_manager.to_string())),
                force,
                ..PatchParams::default()
            };
            let patch = match patch_type {
                PatchType::Merge => Patch::Merge(body),
                PatchType::Strategic => Patch::Strategic(body),
                PatchType::Apply => Patch::Apply(body),
                PatchType::Json => {
                    let operations: json_patch::Patch =
                        serde_json::from_value(body).map_err(|error| {
                            HostError::invalid_request(format!(
                            "a patchType \"json\" body must be a JSON Patch array of operations \
                             ([{{\"op\":\"replace\",\"path\":\"/spec/x\",\"value\":1}}]): {error}"
                        ))
                        })?;
                    Patch::Json(operations)
                }
            };
            match subresource {
                Some(subresource) => {
                    builder.patch_subresource(&subresource, &name, &params, &patch)
                }
                None => builder.patch(&name, &params, &patch),
            }
        }
        KubeRequest::Delete {
            name,
            propagation_policy,
            ..
        } => {
            let params = DeleteParams {
                propagation_policy: propagation_policy.map(|policy| match policy {
                    PropagationPolicy::Background => kube::api::PropagationPolicy::Background,
                    PropagationPolicy::Foreground => kube::api::PropagationPolicy::Foreground,
                    PropagationPolicy::Orphan => kube::api::PropagationPolicy::Orphan,
                }),
                ..DeleteParams::default()
            };
            builder.delete(&name, &params)
        }
    }
    .map_err(|error| HostError::invalid_request(format!("cannot build the request: {error}")))?;
    client
        .request::<Value>(http_request)
        .await
        .map_err(client_error)
}

/// The collection path of the request's kind, in its namespace when the kind is namespaced.
fn url_path(resolved: &ResolvedKind, request: &KubeRequest) -> Result<String, HostError> {
    let kind = &resolved.resource.kind;
    let namespace = request
        .namespace()
        .filter(|namespace| !namespace.is_empty());
    match (resolved.namespaced, namespace, request) {
        (false, Some(namespace), _) => Err(HostError::invalid_request(format!(
            "{kind} is cluster-scoped: remove namespace {namespace:?} from the request"
        ))),
        // Listing a namespaced kind without a namespace lists all namespaces.
        (true, None, KubeRequest::List { .. }) => {
            Ok(DynamicObject::url_path(&resolved.resource, None))
        }
        (true, None, _) => Err(HostError::invalid_request(format!(
            "{kind} is namespaced: set namespace in the {} request",
            request.verb()
        ))),
        (_, namespace, _) => Ok(DynamicObject::url_path(&resolved.resource, namespace)),
    }
}

fn to_bytes(body: &Value) -> Result<Vec<u8>, HostError> {
    serde_json::to_vec(body)
        .map_err(|error| HostError::invalid_request(format!("body cannot be encoded: {error}")))
}

pub(crate) fn discovery_error(error: DiscoveryError) -> HostError {
    match error {
        DiscoveryError::Transport { .. } => HostError::transport(error.to_string()),
        DiscoveryError::InvalidApiVersion { .. } | DiscoveryError::UnknownKind { .. } => {
            HostError::invalid_request(error.to_string())
        }
    }
}

/// Maps a client error: the API server's own error answers keep their `Status`.
pub fn client_error(error: kube::Error) -> HostError {
    match error {
        kube::Error::Api(status) => {
            let fallback = || {
                KubeStatus::failure(
                    i32::from(status.code),
                    status.reason.clone(),
                    status.message.clone(),
                )
            };
            let converted = serde_json::to_value(status.as_ref())
                .ok()
                .and_then(|value| serde_json::from_value::<KubeStatus>(value).ok())
                .unwrap_or_else(fallback);
            HostError::api_status(converted)
        }
        kube::Error::BuildRequest(error) => {
            HostError::invalid_request(format!("cannot build the request: {error}"))
        }
        kube::Error::SerdeError(error) => HostError::transport(format!(
            "the API server's answer is not valid JSON: {error}"
        )),
        other => {
            let message = error_chain(&other);
            if message.contains("timed out") || message.contains("deadline has elapsed") {
                HostError::timeout(format!("request to the API server timed out: {message}"))
            } else {
                HostError::transport(format!("request to the API server failed: {message}"))
            }
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use kube::discovery::ApiResource;

    use super::*;

    fn resolved(namespaced: bool) -> ResolvedKind {
        let resource = ApiResource {
            group: "".into(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: if namespaced {
                "ConfigMap".into()
            } else {
                "Namespace".into()
            },
            plural: if namespaced {
                "configmaps".into()
            } else {
                "namespaces".into()
            },
        };
        ResolvedKind {
            resource,
            namespaced,
        }
    }

    fn get(namespace: Option<&str>) -> KubeRequest {
        KubeRequest::Get {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: namespace.map(Into::into),
            name: "x".into(),
            cached: false,
        }
    }

    #[test]
    fn namespaced_requests_need_a_namespace_except_list() {
        assert_eq!(
            url_path(&resolved(true), &get(Some("ns"))).unwrap(),
            "/api/v1/namespaces/ns/configmaps"
        );
        let error = url_path(&resolved(true), &get(None)).unwrap_err();
        assert!(error.to_string().contains("set namespace"), "{error}");
        let list = KubeRequest::List {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            label_selector: None,
            field_selector: None,
            cached: false,
        };
        assert_eq!(
            url_path(&resolved(true), &list).unwrap(),
            "/api/v1/configmaps"
        );
    }

    #[test]
    fn cluster_scoped_requests_refuse_a_namespace() {
        assert_eq!(
            url_path(&resolved(false), &get(None)).unwrap(),
            "/api/v1/namespaces"
        );
        let error = url_path(&resolved(false), &get(Some("ns"))).unwrap_err();
        assert_eq!(error.type_name(), "invalidRequest");
    }

    #[test]
    fn api_errors_keep_the_servers_status() {
        let status =
            kube::core::Status::failure("configmaps \"x\" not found", "NotFound").with_code(404);
        let error = client_error(kube::Error::Api(status.boxed()));
        assert!(error.is_not_found());
        assert_eq!(error.message(), "configmaps \"x\" not found");
        assert_eq!(error.status().unwrap().kind, "Status");
    }
}
