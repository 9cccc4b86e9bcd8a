//! Watching WasmOperators and ConfigMap metadata: each watch event becomes a [`Change`] on
//! the controller's channel, and applying one syncs the WasmOperators it concerns.
use std::collections::HashMap;
use std::fmt::Debug;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::{Controller, Key};
use crate::cluster::resource::WasmOperator;

/// What a watch saw.
pub(super) enum Change {
    Upsert(Box<WasmOperator>),
    Delete(Key),
    Relisted(Vec<WasmOperator>),
    ConfigMap(Key, Option<String>),
    ConfigMapsRelisted(HashMap<Key, Option<String>>),
}

impl Controller {
    pub(super) async fn apply_change(&mut self, change: Change) {
        match change {
            Change::Upsert(object) => {
                let key = key_of(object.as_ref());
                self.objects.insert(key.clone(), *object);
                self.sync(&key).await;
            }
            Change::Delete(key) => {
                self.objects.remove(&key);
                self.sync(&key).await;
            }
            Change::Relisted(objects) => {
                let mut keys: Vec<Key> = self.objects.keys().cloned().collect();
                self.objects = objects
                    .into_iter()
                    .map(|object| (key_of(&object), object))
                    .collect();
                keys.extend(self.objects.keys().cloned());
                keys.sort();
                keys.dedup();
                for key in keys {
                    self.sync(&key).await;
                }
            }
            Change::ConfigMap(key, version) => {
                self.config_maps.insert(key.clone(), version);
                for user in self.users_of(&key) {
                    self.sync(&user).await;
                }
            }
            Change::ConfigMapsRelisted(versions) => {
                self.config_maps = versions;
                let keys: Vec<Key> = self.objects.keys().cloned().collect();
                for key in keys {
                    self.sync(&key).await;
                }
            }
        }
    }

    /// WasmOperators whose module is in ConfigMap `key`.
    pub(super) fn users_of(&self, key: &Key) -> Vec<Key> {
        self.objects
            .iter()
            .filter(|((namespace, _), object)| {
                namespace == &key.0
                    && object
                        .spec
                        .module
                        .config_map
                        .as_ref()
                        .map(|source| &source.name)
                        == Some(&key.1)
            })
            .map(|(user, _)| user.clone())
            .collect()
    }
}

/// `namespace/name` of `object`.
fn key_of<K: Resource>(object: &K) -> Key {
    (object.namespace().unwrap_or_default(), object.name_any())
}

pub(super) async fn watch_wasm_operators(
    api: Api<WasmOperator>,
    selector: Option<String>,
    changes: mpsc::UnboundedSender<Change>,
) {
    let mut config = watcher::Config::default();
    if let Some(selector) = selector {
        config = config.labels(&selector);
    }
    follow(
        api,
        config,
        "WasmOperators",
        changes,
        |object| Change::Upsert(Box::new(object)),
        |object| Change::Delete(key_of(&object)),
        Change::Relisted,
    )
    .await
}

pub(super) async fn watch_config_maps(
    api: Api<PartialObjectMeta<ConfigMap>>,
    changes: mpsc::UnboundedSender<Change>,
) {
    follow(
        api,
        watcher::Config::default(),
        "ConfigMaps",
        changes,
        |meta| Change::ConfigMap(key_of(&meta), meta.resource_version()),
        |meta| Change::ConfigMap(key_of(&meta), None),
        |metas| {
            Change::ConfigMapsRelisted(
                metas
                    .iter()
                    .map(|meta| (key_of(meta), meta.resource_version()))
                    .collect(),
            )
        },
    )
    .await
}

/// Sends a change for each object applied or deleted in `api`, and one with the complete list
/// after each (re)list; retries failed watches with backoff until the controller is gone.
async fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &str,
    changes: mpsc::UnboundedSender<Change>,
    applied: fn(K) -> Change,
    deleted: fn(K) -> Change,
    relisted: fn(Vec<K>) -> Change,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut listed = Vec::new();
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Apply(object)) => applied(object),
            Ok(Event::Delete(object)) => deleted(object),
            Ok(Event::Init) => {
                listed.clear();
                continue;
            }
            Ok(Event::InitApply(object)) => {
                listed.push(object);
                continue;
            }
            Ok(Event::InitDone) => relisted(std::mem::take(&mut listed)),
            Err(error) => {
                tracing::warn!("watching {what}: {error}; retrying");
                continue;
            }
        };
        if changes.send(change).is_err() {
            return;
        }
    }
}
