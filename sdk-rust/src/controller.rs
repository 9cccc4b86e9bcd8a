//! The registration an operator answers init with, built like kube-rs's `Controller`: the kind it
//! reconciles ([`Controller::new`]), the kinds it creates and owns ([`Controller::owns`]) and
//! other kinds whose events map to its objects ([`Controller::watches`]).
//!
//! The host turns this into shared watches; an event on an owned object enqueues its controller
//! owner, an event on a watched object enqueues what its [`Mapping`] names.

use serde_json::Value;
use wasm_operator_abi::{Mapping, Predicate, Registration, Watch, WatchSpec};

use crate::api::Api;

/// Which objects of a kind a watch covers and which updates matter. The namespace comes from
/// the [`Api`] the watch is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchConfig {
    /// Only objects matching this label selector (`app=web,tier!=db`).
    pub label_selector: Option<String>,
    /// Update filters; none = every event. With some, creates and deletes always pass and an
    /// update passes when any of them holds.
    pub predicates: Vec<Predicate>,
}

impl WatchConfig {
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Adds update filters, e.g. `[Predicate::GenerationChanged]` so that status writes (which do
    /// not change `metadata.generation`) do not wake the operator.
    pub fn predicates(mut self, predicates: impl IntoIterator<Item = Predicate>) -> Self {
        self.predicates.extend(predicates);
        self
    }

    fn watch_spec<K>(self, api: &Api<K>) -> WatchSpec {
        WatchSpec {
            api_version: api.api_version().to_owned(),
            kind: api.kind().to_owned(),
            namespace: api.namespace().map(str::to_owned),
            label_selector: self.label_selector,
            predicates: self.predicates,
        }
    }
}

/// What an operator reconciles and watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    registration: Registration,
}

impl Controller {
    /// Reconciles the objects `api` covers: `Api::<WebApp>::all()` for every namespace,
    /// `Api::<WebApp>::namespaced("ns")` for one.
    pub fn new<K>(api: Api<K>, config: WatchConfig) -> Self {
        Controller {
            registration: Registration::new(config.watch_spec(&api)),
        }
    }

    /// Also watches objects the operator creates: an event on one reconciles its controller owner
    /// (the ownerReference with `controller: true`) when that owner is of the reconciled kind.
    pub fn owns<K>(mut self, api: Api<K>, config: WatchConfig) -> Self {
        self.registration.owns.push(config.watch_spec(&api));
        self
    }

    /// Also watches other objects; `mapping` says which reconciled objects an event enqueues.
    pub fn watches<K>(mut self, api: Api<K>, config: WatchConfig, mapping: Mapping) -> Self {
        self.registration.watches.push(Watch {
            spec: config.watch_spec(&api),
            mapping,
        });
        self
    }

    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    pub fn into_registration(self) -> Registration {
        self.registration
    }
}

/// What the host passes to init: the operator's name and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InitContext {
    /// The name the host gives this operator (unique within the host).
    pub operator_name: String,
    /// The configuration declared when the operator was deployed: a JSON object, `{}` when none.
    pub config: Value,
}

impl InitContext {
    /// The configuration decoded into `C`.
    pub fn config<C: serde::de::DeserializeOwned>(&self) -> crate::Result<C> {
        C::deserialize(&self.config)
            .map_err(|e| crate::Error::decode("the operator's configuration", e))
    }
}
