//! Load-time validation of operator modules: is this a core Wasm module that follows ABI v1, and
//! if so, what does it use? Built on wasmparser only, so the CLI, the host and tests share one
//! implementation and none of them needs wasmtime for it.
//!
//! The checks run in two stages. First the bytes must be a well-formed core module (not a
//! component, not truncated, valid under wasmparser); a failure there stops validation, because
//! nothing else can be read reliably. Then every ABI rule is checked and *all* violations are
//! collected, so a developer fixes everything in one round instead of one problem per build.

mod module_info;
mod problem;

use wasmparser::types::{CoreTypeId, EntityType, TypesRef};
use wasmparser::{FuncType, Parser, Validator, WasmFeatures};

use crate::names::{
    self, Capability, FuncSignature, MarkerName, IMPORT_MODULE, INITIALIZE_EXPORT, MEMORY_EXPORT,
    START_EXPORT, VERSION_MARKER_SIGNATURE, WASI_MODULE,
};
use crate::wasi;

pub use module_info::{ExportInfo, ExternKind, ImportInfo, MemoryInfo, ModuleInfo, WASM_PAGE_SIZE};
pub use problem::{Problem, ValidationError};

/// Checks that `bytes` is an operator module this host can run, and describes it.
///
/// Returns every ABI problem found, or just the first one when the bytes are not a valid core
/// WebAssembly module at all. Never panics, whatever the input.
pub fn validate(bytes: &[u8]) -> Result<ModuleInfo, ValidationError> {
    check_header(bytes).map_err(ValidationError::single)?;
    let types = Validator::new_with_features(WasmFeatures::default())
        .validate_all(bytes)
        .map_err(|error| {
            ValidationError::single(Problem::InvalidWasm {
                offset: error.offset(),
                message: error.message().to_owned(),
            })
        })?;
    let module = ModuleView::read(types.as_ref());

    let mut problems = Vec::new();
    let abi_version = check_version_marker(&module, &mut problems);
    // A module for a version this host does not know follows rules this host does not know
    // either: reporting it against v1's exports and imports would only bury the real problem.
    let checks_abi_rules =
        !matches!(abi_version, Some(version) if !names::is_supported_version(version));
    if checks_abi_rules {
        check_entry_points(&module, &mut problems);
    }
    check_reactor(&module, &mut problems);
    check_memories(&module, &mut problems);
    let capabilities = check_imports(&module, checks_abi_rules, &mut problems);

    match abi_version {
        Some(abi_version) if problems.is_empty() => Ok(ModuleInfo::new(
            abi_version,
            capabilities,
            &module,
            bytes.len(),
        )),
        _ => Err(ValidationError { problems }),
    }
}

/// Rejects what is not a core module before wasmparser does, because its messages for these
/// cases ("unknown binary version", "magic header not detected") do not tell the user what to do.
fn check_header(bytes: &[u8]) -> Result<(), Problem> {
    const MAGIC: &[u8; 4] = b"\0asm";
    if bytes.is_empty() {
        return Err(Problem::NotWasm {
            detail: "the file is empty".to_owned(),
        });
    }
    if !bytes.starts_with(MAGIC) {
        let detail = if looks_like_wasm_text(bytes) {
            "this is WebAssembly text format; compile it to a binary .wasm first (e.g. `wat2wasm`)"
        } else {
            "it does not start with the `\\0asm` magic bytes; pass the .wasm file the build \
             produced (e.g. target/wasm32-wasip1/release/NAME.wasm)"
        };
        return Err(Problem::NotWasm {
            detail: detail.to_owned(),
        });
    }
    // The 4 bytes after the magic are a version and a layer: layer 0 is a core module, layer 1
    // a component. Checked on the layer alone so that every component encoding version is named
    // a component, not "unknown version".
    const COMPONENT_LAYER: [u8; 2] = [1, 0];
    if Parser::is_component(bytes) || bytes.get(6..8) == Some(&COMPONENT_LAYER[..]) {
        return Err(Problem::Component);
    }
    Ok(())
}

fn looks_like_wasm_text(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    text.lines()
        .map(str::trim_start)
        .find(|line| !line.is_empty() && !line.starts_with(";;"))
        .is_some_and(|line| line.starts_with("(module") || line.starts_with("(component"))
}

/// The parts of a validated module the ABI rules look at, with function types resolved.
pub(crate) struct ModuleView {
    pub(crate) imports: Vec<Item>,
    pub(crate) exports: Vec<Item>,
    pub(crate) memories: Vec<wasmparser::MemoryType>,
}

/// One import or export. `module` is empty for exports.
pub(crate) struct Item {
    pub(crate) module: String,
    pub(crate) name: String,
    pub(crate) entity: Entity,
}

/// An import's or export's type, in the terms the ABI cares about.
#[derive(Clone)]
pub(crate) enum Entity {
    Func(Option<FuncType>),
    Memory(wasmparser::MemoryType),
    Table(wasmparser::TableType),
    Global(wasmparser::GlobalType),
    Tag(Option<FuncType>),
}

impl ModuleView {
    fn read(types: TypesRef<'_>) -> Self {
        let resolve = |entity: EntityType| -> Entity {
            let func_type =
                |id: CoreTypeId| match types.get(id).map(|sub| &sub.composite_type.inner) {
                    Some(wasmparser::CompositeInnerType::Func(func)) => Some(func.clone()),
                    _ => None,
                };
            match entity {
                EntityType::Func(id) | EntityType::FuncExact(id) => Entity::Func(func_type(id)),
                EntityType::Memory(memory) => Entity::Memory(memory),
                EntityType::Table(table) => Entity::Table(table),
                EntityType::Global(global) => Entity::Global(global),
                EntityType::Tag(id) => Entity::Tag(func_type(id)),
            }
        };
        let imports = types
            .core_imports()
            .into_iter()
            .flatten()
            .map(|(module, name, entity)| Item {
                module: module.to_owned(),
                name: name.to_owned(),
                entity: resolve(entity),
            })
            .collect();
        let exports = types
            .core_exports()
            .into_iter()
            .flatten()
            .map(|(name, entity)| Item {
                module: String::new(),
                name: name.to_owned(),
                entity: resolve(entity),
            })
            .collect();
        let memories = (0..types.memory_count())
            .map(|index| types.memory_at(index))
            .collect();
        ModuleView {
            imports,
            exports,
            memories,
        }
    }

    pub(crate) fn export(&self, name: &str) -> Option<&Item> {
        self.exports.iter().find(|export| export.name == name)
    }
}

impl Entity {
    fn is_func_with(&self, expected: &FuncSignature) -> bool {
        match self {
            Entity::Func(Some(func)) => signature_matches(func, expected),
            _ => false,
        }
    }
}

fn signature_matches(func: &FuncType, expected: &FuncSignature) -> bool {
    fn same(actual: &[wasmparser::ValType], expected: &[names::ValType]) -> bool {
        actual.len() == expected.len()
            && actual.iter().zip(expected).all(|(actual, expected)| {
                matches!(
                    (actual, expected),
                    (wasmparser::ValType::I32, names::ValType::I32)
                        | (wasmparser::ValType::I64, names::ValType::I64)
                        | (wasmparser::ValType::F32, names::ValType::F32)
                        | (wasmparser::ValType::F64, names::ValType::F64)
                )
            })
    }
    same(func.params(), expected.params) && same(func.results(), expected.results)
}

fn func_description(signature: &FuncSignature) -> String {
    format!("func {signature}")
}

/// Finds the one `wasm_operator_abi_v<N>` export and returns N.
fn check_version_marker(module: &ModuleView, problems: &mut Vec<Problem>) -> Option<u32> {
    let mut markers = Vec::new();
    let mut malformed = false;
    for export in &module.exports {
        match names::parse_version_marker(&export.name) {
            MarkerName::NotAMarker => {}
            MarkerName::Malformed => {
                malformed = true;
                problems.push(Problem::MalformedMarker {
                    name: export.name.clone(),
                });
            }
            MarkerName::Version(version) => markers.push((version, export)),
        }
    }
    match markers.as_slice() {
        [] => {
            if !malformed {
                problems.push(Problem::MissingMarker);
            }
            None
        }
        [(version, export)] => {
            if !names::is_supported_version(*version) {
                problems.push(Problem::UnsupportedVersion { version: *version });
            } else if !export.entity.is_func_with(&VERSION_MARKER_SIGNATURE) {
                problems.push(Problem::WrongExportType {
                    name: export.name.clone(),
                    expected: func_description(&VERSION_MARKER_SIGNATURE),
                    found: export.entity.to_string(),
                });
            }
            Some(*version)
        }
        _ => {
            let names = markers
                .iter()
                .map(|(_, export)| export.name.clone())
                .collect();
            problems.push(Problem::MultipleMarkers { names });
            None
        }
    }
}

/// `memory`, `wasm_operator_init`, `wasm_operator_reconcile` and (when present) `_initialize`.
fn check_entry_points(module: &ModuleView, problems: &mut Vec<Problem>) {
    match module.export(MEMORY_EXPORT) {
        None => problems.push(Problem::MissingExport {
            name: MEMORY_EXPORT.to_owned(),
            expected: "memory".to_owned(),
        }),
        Some(export) if !matches!(export.entity, Entity::Memory(_)) => {
            problems.push(Problem::WrongExportType {
                name: MEMORY_EXPORT.to_owned(),
                expected: "memory".to_owned(),
                found: export.entity.to_string(),
            })
        }
        Some(_) => {}
    }
    for expected in names::GUEST_FUNCTION_EXPORTS {
        match module.export(expected.name) {
            None if expected.required => problems.push(Problem::MissingExport {
                name: expected.name.to_owned(),
                expected: func_description(&expected.signature),
            }),
            Some(export) if !export.entity.is_func_with(&expected.signature) => {
                problems.push(Problem::WrongExportType {
                    name: expected.name.to_owned(),
                    expected: func_description(&expected.signature),
                    found: export.entity.to_string(),
                })
            }
            _ => {}
        }
    }
}

/// The host never calls `_start`; a module that has only `_start` would never be initialised.
fn check_reactor(module: &ModuleView, problems: &mut Vec<Problem>) {
    if module.export(START_EXPORT).is_some() && module.export(INITIALIZE_EXPORT).is_none() {
        problems.push(Problem::CommandModule);
    }
}

/// Every memory, defined or imported, must be a plain 32-bit unshared memory.
fn check_memories(module: &ModuleView, problems: &mut Vec<Problem>) {
    for (index, memory) in module.memories.iter().enumerate() {
        if memory.memory64 {
            problems.push(Problem::Memory64 {
                index: index as u32,
            });
        }
        if memory.shared {
            problems.push(Problem::SharedMemory {
                index: index as u32,
            });
        }
    }
}

/// Checks every import and returns the capabilities the module uses, sorted and deduplicated.
fn check_imports(
    module: &ModuleView,
    checks_abi_rules: bool,
    problems: &mut Vec<Problem>,
) -> Vec<Capability> {
    let mut capabilities = Vec::new();
    for import in &module.imports {
        if !matches!(import.entity, Entity::Func(_)) {
            problems.push(Problem::ImportedNonFunction {
                module: import.module.clone(),
                name: import.name.clone(),
                kind: import.entity.kind().as_str().to_owned(),
            });
            continue;
        }
        match import.module.as_str() {
            IMPORT_MODULE if !checks_abi_rules => {}
            IMPORT_MODULE => match names::host_import(&import.name) {
                None => problems.push(Problem::UnknownHostFunction {
                    name: import.name.clone(),
                }),
                Some(host_import) if !import.entity.is_func_with(&host_import.signature) => {
                    problems.push(Problem::WrongImportType {
                        module: import.module.clone(),
                        name: import.name.clone(),
                        expected: func_description(&host_import.signature),
                        found: import.entity.to_string(),
                    })
                }
                Some(host_import) => capabilities.extend(host_import.capability),
            },
            WASI_MODULE => {
                if !wasi::is_wasi_preview1_function(&import.name) {
                    problems.push(Problem::UnknownWasiFunction {
                        name: import.name.clone(),
                    });
                }
            }
            _ => problems.push(Problem::UnknownImportModule {
                module: import.module.clone(),
                name: import.name.clone(),
            }),
        }
    }
    capabilities.sort();
    capabilities.dedup();
    capabilities
}
