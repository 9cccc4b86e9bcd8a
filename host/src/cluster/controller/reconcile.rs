//! Bringing one WasmOperator's operator in line with its spec: start fetching the module when
//! the generation or the module source changed, validate and load or reload it when it arrives,
//! unload it when the WasmOperator is gone, and record what happened (Events, problems for the
//! status).
use super::{operator_name, Controller, Entry, Fetched, Key};
use crate::cluster::resource::WasmOperator;
use crate::cluster::source::FetchedModule;
use crate::cluster::status::{self, Problem, RunningModule};
use crate::operator::{OperatorError, OperatorState};

impl Controller {
    /// The version of the module source that can change without the WasmOperator changing.
    pub(super) fn source_version(&self, key: &Key, object: &WasmOperator) -> Option<String> {
        let source = object.spec.module.config_map.as_ref()?;
        self.config_maps
            .get(&(key.0.clone(), source.name.clone()))
            .cloned()
            .flatten()
    }

    pub(super) async fn sync(&mut self, key: &Key) {
        if !self.owns(key) {
            return self.forget(key).await;
        }
        let object = self
            .objects
            .get(key)
            .filter(|object| object.metadata.deletion_timestamp.is_none())
            .cloned();
        let Some(object) = object else {
            if let Some(entry) = self.entries.remove(key) {
                self.operators.remove(&entry.operator);
                if self.manager.state(&entry.operator).is_some() {
                    let _ = self.manager.unload(&entry.operator).await;
                }
                self.counter.reset(&entry.operator);
                tracing::info!(wasmoperator = %format!("{}/{}", key.0, key.1), operator = %entry.operator, "WasmOperator deleted: operator unloaded");
                // A WasmOperator refused for using this name may run now.
                let waiting: Vec<Key> = self
                    .objects
                    .keys()
                    .filter(|other| {
                        !self.entries.contains_key(*other)
                            && operator_name(&other.0, &other.1) == entry.operator
                    })
                    .cloned()
                    .collect();
                for other in waiting {
                    Box::pin(self.sync(&other)).await;
                }
            }
            return;
        };
        let generation = object.metadata.generation;
        let known_version = self.source_version(key, &object);
        let operator = operator_name(&key.0, &key.1);
        if let Some(holder) = self
            .operators
            .get(&operator)
            .filter(|holder| *holder != key)
        {
            // Defence in depth: never let a second WasmOperator drive (reload, unload) the
            // operator of another one, whatever the naming scheme produces.
            let message = format!(
                "the host operator name {operator:?} is already used by WasmOperator {}/{}; \
                 rename this WasmOperator",
                holder.0, holder.1
            );
            tracing::warn!(wasmoperator = %format!("{}/{}", key.0, key.1), "{message}");
            let problem = Problem {
                reason: "NameCollision",
                message,
            };
            let observation = status::Observation {
                generation: object.metadata.generation,
                running: None,
                state: None,
                problem: Some(&problem),
                counts: Default::default(),
                host: &self.settings.identity,
            };
            let failed = status::status(&observation, object.status.as_ref());
            if object
                .status
                .as_ref()
                .is_none_or(|written| status::differs(written, &failed))
            {
                self.writer
                    .event(&object, true, problem.reason, &problem.message)
                    .await;
                if let Err(error) = self.writer.write(&object, &failed).await {
                    tracing::warn!(wasmoperator = %format!("{}/{}", key.0, key.1), "cannot write the status: {error}");
                }
            }
            return;
        }
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            operator,
            attempted: None,
            running: None,
            problem: None,
            reported: None,
            written: object.status.clone(),
            last_warning: None,
            fetching: None,
            pending: None,
        });
        self.operators.insert(entry.operator.clone(), key.clone());
        let up_to_date =
            entry
                .attempted
                .as_ref()
                .is_some_and(|(attempted_generation, attempted_version)| {
                    *attempted_generation == generation
                        && (known_version.is_none() || *attempted_version == known_version)
                });
        let target = (generation, known_version);
        let in_flight = entry
            .fetching
            .as_ref()
            .is_some_and(|fetching| fetching.target == target);
        if up_to_date {
            // Whatever is still in flight is for another target: no longer wanted.
            entry.fetching = None;
        } else if !in_flight {
            // Replaces (aborts) a fetch for an older generation or source version.
            entry.fetching = Some(self.fetches.start(key, target, &object.spec.module));
        }
        self.refresh(key).await;
    }

    /// A module fetch finished: unless a newer one superseded it, validates and (re)loads the
    /// module and records the outcome.
    pub(super) async fn module_fetched(&mut self, fetched: Fetched) {
        let key = &fetched.key;
        let Some(entry) = self.entries.get_mut(key) else {
            return; // deleted meanwhile
        };
        if !entry
            .fetching
            .as_ref()
            .is_some_and(|fetching| fetching.delivered(&fetched))
        {
            return; // superseded
        }
        let Some((generation, known_version)) = entry.fetching.take().map(|done| done.target)
        else {
            return;
        };
        let Some(object) = self
            .objects
            .get(key)
            .filter(|object| object.metadata.deletion_timestamp.is_none())
            .cloned()
        else {
            return;
        };
        let operator = entry.operator.clone();
        let was_running = entry.running.clone();
        let (attempted_version, outcome, pending) = match fetched.result {
            Ok(module) => {
                let version = module.source_version.clone();
                let (outcome, pending) = self.start(&key.0, &operator, &object, module).await;
                (version, outcome, pending)
            }
            Err(error) => {
                let problem = Problem {
                    reason: error.reason,
                    message: error.message,
                };
                (None, Err(problem), None)
            }
        };
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        entry.attempted = Some((generation, attempted_version.or(known_version)));
        match outcome {
            Ok(running) => {
                let (reason, note) = match &was_running {
                    Some(old) => (
                        "Reloaded",
                        format!("replaced module {} with {}", old.digest, running.digest),
                    ),
                    None => ("Loaded", format!("loaded module {}", running.digest)),
                };
                let clamped = running.notes.join("; ");
                entry.running = Some(running);
                entry.problem = None;
                entry.pending = None;
                entry.last_warning = None;
                self.counter.reset(&operator);
                self.writer.event(&object, false, reason, &note).await;
                if !clamped.is_empty() {
                    self.writer
                        .event(&object, true, "LimitsClamped", &clamped)
                        .await;
                }
            }
            Err(problem) => {
                // A load failure leaves nothing running; a fetch or validation failure
                // leaves the previous module running.
                if self.manager.state(&operator).is_none()
                    || matches!(
                        self.manager.state(&operator),
                        Some(OperatorState::Failed { .. })
                    )
                {
                    entry.running = None;
                }
                // A fetch or validation failure leaves what the manager holds as it was.
                if let Some(pending) = pending {
                    entry.pending = pending.map(|module| (module, problem.clone()));
                }
                let warning = format!("{}: {}", problem.reason, problem.message);
                let repeated = entry.last_warning.as_ref() == Some(&warning);
                entry.last_warning = Some(warning);
                entry.problem = Some(problem.clone());
                tracing::warn!(wasmoperator = %format!("{}/{}", key.0, key.1), reason = problem.reason, "{}", problem.message);
                if !repeated {
                    self.writer
                        .event(&object, true, problem.reason, &problem.message)
                        .await;
                }
            }
        }
        self.refresh(key).await;
    }

    /// Validates and (re)loads a fetched module. Also returns, when a load was attempted, the
    /// module the manager holds without running it yet: on a failed start (init failed) the
    /// manager keeps the operator and retries it, and the module runs once it starts.
    pub(super) async fn start(
        &self,
        namespace: &str,
        operator: &str,
        object: &WasmOperator,
        fetched: FetchedModule,
    ) -> (
        Result<RunningModule, Problem>,
        Option<Option<RunningModule>>,
    ) {
        let info = match wasm_operator_abi::validate(&fetched.wasm) {
            Ok(info) => info,
            Err(error) => {
                let problem = Problem {
                    reason: "ValidationFailed",
                    message: format!(
                        "module {} is not a valid operator module: {}",
                        fetched.digest,
                        error.to_string().replace('\n', "; ")
                    ),
                };
                return (Err(problem), None);
            }
        };
        let (spec, notes) = match self.operator_spec(namespace, operator, object, fetched.wasm) {
            Ok(translated) => translated,
            Err(problem) => return (Err(problem), None),
        };
        let module = RunningModule {
            digest: fetched.digest,
            capabilities: info
                .capabilities
                .iter()
                .map(|capability| capability.as_str().to_string())
                .collect(),
            notes,
        };
        let result = if self.manager.state(operator).is_some() {
            self.manager.reload(spec).await
        } else {
            self.manager.load(spec).await
        };
        match result {
            Ok(()) => (Ok(module), Some(None)),
            Err(error) => {
                let pending = (matches!(error, OperatorError::Start { .. })
                    && self.manager.state(operator).is_some())
                .then(|| module.clone());
                let problem = Problem {
                    reason: "LoadFailed",
                    message: error.to_string(),
                };
                (Err(problem), Some(pending))
            }
        }
    }
}
