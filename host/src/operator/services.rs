//! [`OperatorServices`]: the host calls of one operator. Kubernetes requests go out with the
//! operator's own client (and may be answered from its watches' caches), HTTP goes through the
//! operator's egress allowlist, and log lines are tagged with the operator's name.
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use wasm_operator_abi::{HostResponse, HttpRequest, KubeRequest, LogLevel, LogRecord};

use crate::egress::HttpEgress;
use crate::kube::discovery::Discovery;
use crate::kube::watches::Subscription;
use crate::kube::{cache, requests};
use crate::runtime::HostServices;

pub(crate) struct OperatorServices {
    name: Arc<str>,
    client: kube::Client,
    discovery: Discovery,
    egress: Arc<HttpEgress>,
    /// The operator's own watches, for `cached: true` reads; filled in once it registered.
    watches: Mutex<Vec<Arc<Subscription>>>,
}

impl OperatorServices {
    pub fn new(name: &str, client: kube::Client, discovery: Discovery, egress: HttpEgress) -> Self {
        OperatorServices {
            name: Arc::from(name),
            client,
            discovery,
            egress: Arc::new(egress),
            watches: Mutex::default(),
        }
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
        if let Some(answer) = self.cached(&request) {
            return futures::future::ready(answer).boxed();
        }
        let (client, discovery, name) = (
            self.client.clone(),
            self.discovery.clone(),
            self.name.clone(),
        );
        async move { requests::execute(&client, &discovery, &name, request).await }.boxed()
    }

    fn http(&self, request: HttpRequest) -> BoxFuture<'static, HostResponse> {
        let egress = self.egress.clone();
        async move { egress.send(request).await }.boxed()
    }

    fn log(&self, record: LogRecord) {
        let operator = &*self.name;
        let message = &record.message;
        // Fields travel as one JSON object so structured log backends keep them together.
        let fields = if record.fields.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&record.fields).unwrap_or_default()
        };
        match record.level {
            LogLevel::Error => tracing::error!(target: "operator", operator, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "operator", operator, fields, "{message}"),
            LogLevel::Info => tracing::info!(target: "operator", operator, fields, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "operator", operator, fields, "{message}"),
            LogLevel::Trace => tracing::trace!(target: "operator", operator, fields, "{message}"),
        }
    }
}
