//! [`OperatorServices`]: the host calls of one operator. Kubernetes requests go out with the
//! operator's own client (and may be answered from its watches' caches), HTTP goes through the
//! operator's egress allowlist, and log lines are tagged with the operator's name, truncated and
//! rate-limited ([`GuestLog`]: the guest chooses their text and how many). Every answered
//! Kubernetes or HTTP call is shown to the manager's host-call observer, if there is one.
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use wasm_operator_abi::{
    HostResponse, HttpRequest, KubeRequest, LogLevel, LogRecord, Registration,
};

use crate::egress::HttpEgress;
use crate::kube::discovery::Discovery;
use crate::kube::watches::Subscription;
use crate::kube::{cache, requests};
use crate::metrics::{HostMetrics, OperatorLabels};
use crate::runtime::guest_log::{truncate_utf8, GuestLog, MAX_LOG_LINE_BYTES};

/// The tracing target of operators' own log records.
pub const OPERATOR_LOG_TARGET: &str = "operator";
use crate::runtime::HostServices;

use super::{HostCall, HostCallObserver, HostCallRecord};

/// Decides whether a `cached: true` read of an operator may be answered from the shared cache.
/// `false` sends the read to the API server with the operator's own identity instead, where
/// RBAC answers it. (The cluster mode checks the operator's ServiceAccount with
/// SubjectAccessReviews: `cluster::access`.)
pub trait ReadAccess: Send + Sync {
    fn may_list_watch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> BoxFuture<'static, bool>;

    /// The verb the identity lacks to list and watch `kind` in `namespace` (`None` = all
    /// namespaces), or `None` when it may do both.
    fn missing_verb(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> BoxFuture<'static, Option<String>> {
        let allowed = self.may_list_watch(api_version, kind, namespace);
        async move { (!allowed.await).then(|| "list and watch".to_string()) }.boxed()
    }

    /// Who the answers are about, for messages.
    fn identity(&self) -> String {
        "the operator's identity".into()
    }
}

pub(crate) struct OperatorServices {
    name: Arc<str>,
    client: kube::Client,
    discovery: Discovery,
    egress: Arc<HttpEgress>,
    /// The operator's own watches, for `cached: true` reads; filled in once it registered.
    watches: Mutex<Vec<Arc<Subscription>>>,
    observer: Option<HostCallObserver>,
    /// Gates answers from the cache; `None` = every cached read the cache can answer.
    read_access: Option<Arc<dyn ReadAccess>>,
    /// The operator's log budget, shared with its instances' stdout and stderr.
    log: Arc<GuestLog>,
}

impl OperatorServices {
    pub fn new(
        name: &str,
        client: kube::Client,
        discovery: Discovery,
        egress: HttpEgress,
        observer: Option<HostCallObserver>,
        read_access: Option<Arc<dyn ReadAccess>>,
        metrics: &HostMetrics,
    ) -> Self {
        let log = GuestLog::for_operator(name);
        log.count_dropped_in(
            metrics
                .guest_log_lines_dropped
                .get_or_create(&OperatorLabels {
                    operator: name.to_string(),
                })
                .clone(),
        );
        OperatorServices {
            log,
            name: Arc::from(name),
            client,
            discovery,
            egress: Arc::new(egress),
            watches: Mutex::default(),
            observer,
            read_access,
        }
    }

    /// A copy of the call for the observer, taken before the call is sent; `None` without one.
    fn copy_for_observer(&self, call: impl FnOnce() -> HostCall) -> Option<HostCall> {
        self.observer.is_some().then(call)
    }

    /// Hands the answer, with the call it answers, to the observer on its way to the guest.
    fn observed(
        &self,
        call: Option<HostCall>,
        answer: BoxFuture<'static, HostResponse>,
    ) -> BoxFuture<'static, HostResponse> {
        let (Some(observer), Some(call)) = (self.observer.clone(), call) else {
            return answer;
        };
        let operator = self.name.to_string();
        async move {
            let response = answer.await;
            let record = HostCallRecord {
                operator,
                call,
                response,
            };
            observer(&record);
            record.response
        }
        .boxed()
    }

    /// Why the operator may not be given what `registration` asks for: a watch of a kind and
    /// namespace its identity may not list and watch (the events and the `for` objects would
    /// hand it what it cannot read). `None` when it may, or when reads are not gated.
    pub async fn registration_refused(&self, registration: &Registration) -> Option<String> {
        let access = self.read_access.as_ref()?;
        let specs = std::iter::once(&registration.for_)
            .chain(&registration.owns)
            .chain(registration.watches.iter().map(|watch| &watch.spec));
        for spec in specs {
            let namespace = spec.namespace.as_deref().filter(|ns| !ns.is_empty());
            if let Some(verb) = access
                .missing_verb(&spec.api_version, &spec.kind, namespace)
                .await
            {
                let place = match namespace {
                    Some(namespace) => format!("in namespace {namespace}"),
                    None => "in all namespaces (cluster-wide)".into(),
                };
                return Some(format!(
                    "{} may not {verb} {} {} {place}, which its registration watches; \
                     grant it list and watch there (RBAC), or register a narrower watch",
                    access.identity(),
                    spec.api_version,
                    spec.kind
                ));
            }
        }
        None
    }

    pub fn set_watches(&self, watches: Vec<Arc<Subscription>>) {
        *self
            .watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = watches;
    }

    fn cached(&self, request: &KubeRequest) -> Option<HostResponse> {
        let watches = self
            .watches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match request {
            KubeRequest::Get {
                api_version,
                kind,
                namespace,
                name,
                cached: true,
            } => cache::get(&watches, api_version, kind, namespace.as_deref(), name),
            KubeRequest::List {
                api_version,
                kind,
                namespace,
                label_selector,
                field_selector,
                cached: true,
            } => cache::list(
                &watches,
                api_version,
                kind,
                namespace.as_deref(),
                label_selector.as_deref(),
                field_selector.as_deref(),
            ),
            _ => None,
        }
    }
}

impl HostServices for OperatorServices {
    fn kube(&self, request: KubeRequest) -> BoxFuture<'static, HostResponse> {
        let call = self.copy_for_observer(|| HostCall::Kube(request.clone()));
        let (client, discovery, name) = (
            self.client.clone(),
            self.discovery.clone(),
            self.name.clone(),
        );
        if let Some(answer) = self.cached(&request) {
            let Some(access) = &self.read_access else {
                return self.observed(call, futures::future::ready(answer).boxed());
            };
            // The cache could answer; whether it may is the operator's identity's business.
            let allowed = match &request {
                KubeRequest::Get {
                    api_version,
                    kind,
                    namespace,
                    ..
                }
                | KubeRequest::List {
                    api_version,
                    kind,
                    namespace,
                    ..
                } => access.may_list_watch(api_version, kind, namespace.as_deref()),
                _ => futures::future::ready(false).boxed(),
            };
            let answer = async move {
                if allowed.await {
                    answer
                } else {
                    requests::execute(&client, &discovery, &name, request).await
                }
            }
            .boxed();
            return self.observed(call, answer);
        }
        let answer =
            async move { requests::execute(&client, &discovery, &name, request).await }.boxed();
        self.observed(call, answer)
    }

    fn http(&self, request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        let call = self.copy_for_observer(|| HostCall::Http(request.clone()));
        let egress = self.egress.clone();
        self.observed(call, async move { egress.send(request).await }.boxed())
    }

    /// Writes the record as a tracing event of target [`OPERATOR_LOG_TARGET`], the operator's
    /// fields as one JSON text in field `fields` (written back as an object in JSON logs).
    fn log(&self, record: LogRecord) {
        if !self.log.admit() {
            return;
        }
        let operator = &*self.name;
        let message = truncate_utf8(&record.message, MAX_LOG_LINE_BYTES);
        // Fields travel as one JSON object so structured log backends keep them together.
        let fields = if record.fields.is_empty() {
            String::new()
        } else {
            let fields = serde_json::to_string(&record.fields).unwrap_or_default();
            truncate_utf8(&fields, MAX_LOG_LINE_BYTES).into_owned()
        };
        match record.level {
            LogLevel::Error => {
                tracing::error!(target: OPERATOR_LOG_TARGET, operator, fields, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: OPERATOR_LOG_TARGET, operator, fields, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: OPERATOR_LOG_TARGET, operator, fields, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: OPERATOR_LOG_TARGET, operator, fields, "{message}")
            }
            LogLevel::Trace => {
                tracing::trace!(target: OPERATOR_LOG_TARGET, operator, fields, "{message}")
            }
        }
    }
}
