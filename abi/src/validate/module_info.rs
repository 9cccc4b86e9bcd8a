//! [`ModuleInfo`], what validation tells about a module it accepts (ABI version, capabilities,
//! exports, imports, memory, size), and the one-line descriptions of Wasm types it uses, both
//! here and in [`super::Problem`] messages.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Entity, ModuleView};
use crate::names::{self, Capability, INITIALIZE_EXPORT, MEMORY_EXPORT};

/// A module that passed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModuleInfo {
    /// The N of its `wasm_operator_abi_v<N>` marker.
    pub abi_version: u32,
    /// The capabilities its imports use (sorted); the operator must be granted each of them.
    pub capabilities: Vec<Capability>,
    /// Whether it exports `_initialize` (the host then calls it once per fresh instance).
    pub has_initialize: bool,
    /// The exported linear memory.
    pub memory: MemoryInfo,
    /// Size of the module file.
    pub size_bytes: u64,
    /// Every export, in module order.
    pub exports: Vec<ExportInfo>,
    /// Every import, in module order.
    pub imports: Vec<ImportInfo>,
}

/// The exported memory's limits, in 64 KiB Wasm pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryInfo {
    pub initial_pages: u64,
    /// `None` when the module sets no maximum (the host's memory limit still applies).
    pub maximum_pages: Option<u64>,
}

/// Bytes per Wasm page.
pub const WASM_PAGE_SIZE: u64 = 65536;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportInfo {
    pub name: String,
    pub kind: ExternKind,
    /// The type, e.g. `[i32] -> [i32]` for a function, `17 pages, no maximum` for a memory.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportInfo {
    pub module: String,
    pub name: String,
    pub kind: ExternKind,
    pub signature: String,
    /// The capability this import belongs to, for `wasm_operator` imports other than the core
    /// memory-protocol functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<Capability>,
}

/// What kind of thing an import or export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExternKind {
    Func,
    Memory,
    Table,
    Global,
    Tag,
}

impl ExternKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExternKind::Func => "func",
            ExternKind::Memory => "memory",
            ExternKind::Table => "table",
            ExternKind::Global => "global",
            ExternKind::Tag => "tag",
        }
    }
}

impl fmt::Display for ExternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ModuleInfo {
    /// Describes a module whose problems list came back empty. The module is known to export a
    /// memory called `memory` at that point.
    pub(super) fn new(
        abi_version: u32,
        capabilities: Vec<Capability>,
        module: &ModuleView,
        size_bytes: usize,
    ) -> Self {
        let memory = match module.export(MEMORY_EXPORT).map(|export| &export.entity) {
            Some(Entity::Memory(memory)) => MemoryInfo {
                initial_pages: memory.initial,
                maximum_pages: memory.maximum,
            },
            _ => MemoryInfo {
                initial_pages: 0,
                maximum_pages: None,
            },
        };
        let exports = module
            .exports
            .iter()
            .map(|export| ExportInfo {
                name: export.name.clone(),
                kind: export.entity.kind(),
                signature: export.entity.details(),
            })
            .collect();
        let imports = module
            .imports
            .iter()
            .map(|import| ImportInfo {
                module: import.module.clone(),
                name: import.name.clone(),
                kind: import.entity.kind(),
                signature: import.entity.details(),
                capability: if import.module == names::IMPORT_MODULE {
                    names::host_import(&import.name).and_then(|host_import| host_import.capability)
                } else {
                    None
                },
            })
            .collect();
        ModuleInfo {
            abi_version,
            capabilities,
            has_initialize: module.export(INITIALIZE_EXPORT).is_some(),
            memory,
            size_bytes: size_bytes as u64,
            exports,
            imports,
        }
    }
}

impl Entity {
    pub(super) fn kind(&self) -> ExternKind {
        match self {
            Entity::Func(_) => ExternKind::Func,
            Entity::Memory(_) => ExternKind::Memory,
            Entity::Table(_) => ExternKind::Table,
            Entity::Global(_) => ExternKind::Global,
            Entity::Tag(_) => ExternKind::Tag,
        }
    }

    /// The type without its kind: `[i32] -> [i32]`, `17 pages, no maximum`, `mut i32`, ...
    pub(super) fn details(&self) -> String {
        match self {
            Entity::Func(func) | Entity::Tag(func) => match func {
                Some(func) => format!(
                    "{} -> {}",
                    val_type_list(func.params()),
                    val_type_list(func.results())
                ),
                None => "(not a function type)".to_owned(),
            },
            Entity::Memory(memory) => {
                let mut text = limits(memory.initial, memory.maximum, "page");
                if memory.memory64 {
                    text.push_str(", 64-bit");
                }
                if memory.shared {
                    text.push_str(", shared");
                }
                text
            }
            Entity::Table(table) => format!(
                "{}, {}",
                table.element_type,
                limits(table.initial, table.maximum, "element")
            ),
            Entity::Global(global) => {
                let mutability = if global.mutable { "mut " } else { "" };
                format!("{mutability}{}", global.content_type)
            }
        }
    }
}

impl fmt::Display for Entity {
    /// The kind and the type: `func [i32] -> [i32]`, `memory (17 pages, no maximum)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entity::Memory(_) | Entity::Table(_) => {
                write!(f, "{} ({})", self.kind(), self.details())
            }
            _ => write!(f, "{} {}", self.kind(), self.details()),
        }
    }
}

fn val_type_list(types: &[wasmparser::ValType]) -> String {
    let types: Vec<String> = types.iter().map(ToString::to_string).collect();
    format!("[{}]", types.join(", "))
}

fn limits(initial: u64, maximum: Option<u64>, unit: &str) -> String {
    let plural = |count: u64| {
        if count == 1 {
            unit.to_owned()
        } else {
            format!("{unit}s")
        }
    };
    match maximum {
        Some(maximum) => format!("{initial} {}, maximum {maximum}", plural(initial)),
        None => format!("{initial} {}, no maximum", plural(initial)),
    }
}
