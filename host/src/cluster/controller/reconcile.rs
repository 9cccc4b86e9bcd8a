//! Bringing one WasmOperator's operator in line with its spec: fetch, validate and load or
//! reload the module when the generation or the module source changed, unload it when the
//! WasmOperator is gone, and record what happened (Events, problems for the status).
use super::{operator_name, Controller, Entry, Key};
use crate::cluster::resource::WasmOperator;
use crate::cluster::status::{self, Problem, RunningModule};
use crate::operator::OperatorState;

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
        if !up_to_date {
            let operator = entry.operator.clone();
            let was_running = entry.running.clone();
            let (attempted_version, outcome) = self.start(&key.0, &operator, &object).await;
            let entry = self.entries.get_mut(key).expect("inserted above");
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
        }
        self.refresh(key).await;
    }

    /// Fetches, validates and (re)loads the module; returns the source version fetched.
    pub(super) async fn start(
        &self,
        namespace: &str,
        operator: &str,
        object: &WasmOperator,
    ) -> (Option<String>, Result<RunningModule, Problem>) {
        let fetched = match self.fetcher.fetch(namespace, &object.spec.module).await {
            Ok(fetched) => fetched,
            Err(error) => {
                return (
                    None,
                    Err(Problem {
                        reason: error.reason,
                        message: error.message,
                    }),
                )
            }
        };
        let version = fetched.source_version.clone();
        let outcome = async {
            let info = wasm_operator_abi::validate(&fetched.wasm).map_err(|error| Problem {
                reason: "ValidationFailed",
                message: format!(
                    "module {} is not a valid operator module: {}",
                    fetched.digest,
                    error.to_string().replace('\n', "; ")
                ),
            })?;
            let (spec, notes) = self.operator_spec(namespace, operator, object, fetched.wasm)?;
            let result = if self.manager.state(operator).is_some() {
                self.manager.reload(spec).await
            } else {
                self.manager.load(spec).await
            };
            result.map_err(|error| Problem {
                reason: "LoadFailed",
                message: error.to_string(),
            })?;
            Ok(RunningModule {
                digest: fetched.digest.clone(),
                capabilities: info
                    .capabilities
                    .iter()
                    .map(|capability| capability.as_str().to_string())
                    .collect(),
                notes,
            })
        }
        .await;
        (version, outcome)
    }
}
