//! The load-time instrumentation that makes an instance's state reachable for swap, and the
//! description of that state ([`SwapLayout`]) read back from the compiled module.
//!
//! A Wasm module's mutable globals are usually not exported (Rust's `__stack_pointer`, Go's
//! eight runtime globals), and without them a copied memory image is useless. wasmtime-wizer's
//! instrumentation pass adds an export `__wizer_global_<index>` for every mutable global the
//! module defines (and `__wizer_memory_<n>` for its memories), leaving code and indices alone.
//! The same pass refuses modules whose state a snapshot of memory and globals would not capture:
//! tables changed at run time (`table.set`, `table.grow`, ...), dropped segments, mutable globals
//! holding references, imported memories or globals. Such a module still loads and runs; it just
//! cannot be swapped, and [`SwapSupport::Unsupported`] says why.
//!
//! Precompiled artifacts of instrumented modules are cached under their own key
//! ([`INSTRUMENTED_VARIANT`]), apart from uninstrumented ones, so a cached artifact always matches
//! what the load expects. wasmtime-wizer is pinned to wasmtime's exact version, whose upgrades
//! already change the cache key; bump the variant when this pass itself changes.

use wasmparser::{Parser, Payload, TypeRef};
use wasmtime::{Engine, ExternType, Module, Mutability, ValType};

use super::format::CHUNK_BYTES;
use crate::runtime::cache::{LoadSource, ModuleCache};

/// Cache key suffix of instrumented artifacts; change it whenever the instrumentation changes.
pub(crate) const INSTRUMENTED_VARIANT: &str = "swap1";

/// wasmparser's limit on exports per module; instrumentation must stay below it.
const MAX_EXPORTS: u64 = 100_000;

const GLOBAL_EXPORT_PREFIX: &str = "__wizer_global_";
const INSTRUMENTATION_PREFIX: &str = "__wizer_";

/// Whether instances of a module can be swapped out.
#[derive(Debug, Clone)]
pub(crate) enum SwapSupport {
    Supported(SwapLayout),
    /// Why not, in words for the operator's author.
    Unsupported(String),
}

/// Where an instance's state lives: what swap-out saves and swap-in restores.
#[derive(Debug, Clone)]
pub(crate) struct SwapLayout {
    /// Every mutable global, by index, with the export that reaches it.
    pub globals: Vec<GlobalSlot>,
    /// The memory's size in a fresh instance. Those bytes may come from the module's data
    /// segments, so they are never assumed to be zero.
    pub initial_memory_bytes: u64,
    /// SHA-256 of the original module, recorded in every snapshot.
    pub module_digest: [u8; 32],
}

#[derive(Debug, Clone)]
pub(crate) struct GlobalSlot {
    pub index: u32,
    pub export: String,
    pub ty: GlobalType,
}

/// The value types a snapshot can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalType {
    I32,
    I64,
    F32,
    F64,
    V128,
}

/// Compiles `wasm` (SHA-256 hex `module_sha256`) instrumented for swap, or as is when it cannot
/// be instrumented, using the precompiled cache either way. A cache hit on the instrumented
/// variant skips instrumentation altogether.
pub(crate) fn load_module(
    cache: &ModuleCache,
    engine: &Engine,
    wasm: &[u8],
    module_sha256: &str,
) -> wasmtime::Result<(Module, LoadSource, SwapSupport)> {
    let (module, source) = match cache.cached(engine, module_sha256, Some(INSTRUMENTED_VARIANT)) {
        Some(module) => (module, LoadSource::Cache),
        None => match instrument(wasm) {
            Ok(instrumented) => cache.load_or_compile(
                engine,
                &instrumented,
                module_sha256,
                Some(INSTRUMENTED_VARIANT),
            )?,
            Err(reason) => {
                let (module, source) = cache.load_or_compile(engine, wasm, module_sha256, None)?;
                return Ok((module, source, SwapSupport::Unsupported(reason)));
            }
        },
    };
    let support = match layout(&module, module_sha256) {
        Ok(layout) => SwapSupport::Supported(layout),
        Err(reason) => SwapSupport::Unsupported(reason),
    };
    Ok((module, source, support))
}

/// Returns `wasm` with its state exported, or why it cannot be swapped.
pub(crate) fn instrument(wasm: &[u8]) -> Result<Vec<u8>, String> {
    precheck(wasm)?;
    wasmtime_wizer::Wizer::new()
        .instrument(wasm)
        .map(|(_, instrumented)| instrumented)
        .map_err(|error| format!("{error:#}"))
}

/// Refuses what would make the instrumented module invalid, before the pass runs: export names
/// the pass adds already taken, too many exports, or a memory shape snapshots do not handle.
fn precheck(wasm: &[u8]) -> Result<(), String> {
    let mut exports = 0u64;
    let mut mutable_globals = 0u64;
    let mut memories = 0u64;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(|error| error.to_string())? {
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    if let TypeRef::Memory(_) = import.map_err(|e| e.to_string())?.ty {
                        return Err("it imports its memory".to_owned());
                    }
                }
            }
            Payload::MemorySection(section) => {
                for memory in section {
                    let memory = memory.map_err(|error| error.to_string())?;
                    if memory.memory64 || memory.shared {
                        return Err("its memory is 64-bit or shared".to_owned());
                    }
                    if memory.page_size_log2.is_some_and(|log2| log2 != 16) {
                        return Err("its memory does not use 64 KiB pages".to_owned());
                    }
                    memories += 1;
                }
            }
            Payload::GlobalSection(section) => {
                for global in section {
                    if global.map_err(|error| error.to_string())?.ty.mutable {
                        mutable_globals += 1;
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export.map_err(|error| error.to_string())?;
                    if export.name.starts_with(INSTRUMENTATION_PREFIX) {
                        return Err(format!(
                            "it already exports `{}`, a name the instrumentation uses",
                            export.name
                        ));
                    }
                    exports += 1;
                }
            }
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    if memories != 1 {
        return Err(format!(
            "it defines {memories} memories; swap handles exactly one"
        ));
    }
    if exports + mutable_globals + memories > MAX_EXPORTS {
        return Err("it has too many exports and globals to export its state".to_owned());
    }
    Ok(())
}

/// Reads the state layout back from a compiled instrumented module.
pub(crate) fn layout(module: &Module, module_sha256_hex: &str) -> Result<SwapLayout, String> {
    let mut module_digest = [0u8; 32];
    hex::decode_to_slice(module_sha256_hex, &mut module_digest)
        .map_err(|error| format!("the module digest is not SHA-256 hex: {error}"))?;
    let mut globals = Vec::new();
    let mut initial_memory_bytes = None;
    for export in module.exports() {
        match export.ty() {
            ExternType::Global(global) => {
                let Some(index) = export.name().strip_prefix(GLOBAL_EXPORT_PREFIX) else {
                    continue;
                };
                let index: u32 = index.parse().map_err(|_| {
                    format!("unexpected instrumentation export `{}`", export.name())
                })?;
                if global.mutability() != Mutability::Var {
                    continue;
                }
                let ty = match global.content() {
                    ValType::I32 => GlobalType::I32,
                    ValType::I64 => GlobalType::I64,
                    ValType::F32 => GlobalType::F32,
                    ValType::F64 => GlobalType::F64,
                    ValType::V128 => GlobalType::V128,
                    ValType::Ref(_) => {
                        return Err(format!("global {index} holds a reference"));
                    }
                };
                globals.push(GlobalSlot {
                    index,
                    export: export.name().to_owned(),
                    ty,
                });
            }
            ExternType::Memory(memory)
                if export.name() == wasm_operator_abi::names::MEMORY_EXPORT =>
            {
                initial_memory_bytes = Some(memory.minimum().saturating_mul(CHUNK_BYTES));
            }
            _ => {}
        }
    }
    globals.sort_by_key(|global| global.index);
    let initial_memory_bytes =
        initial_memory_bytes.ok_or_else(|| "the module does not export its memory".to_owned())?;
    Ok(SwapLayout {
        globals,
        initial_memory_bytes,
        module_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(source: &str) -> Vec<u8> {
        wat::parse_str(source).unwrap()
    }

    #[test]
    fn mutable_globals_are_exported_and_listed_in_index_order() {
        let original = wasm(
            r#"(module
                 (memory (export "memory") 2)
                 (global (mut i32) (i32.const 1))
                 (global i64 (i64.const 2))
                 (global (mut f64) (f64.const 3))
                 (global (mut v128) (v128.const i64x2 4 5)))"#,
        );
        let instrumented = instrument(&original).unwrap();
        let engine = wasmtime::Engine::default();
        let module = Module::new(&engine, &instrumented).unwrap();
        let layout = layout(&module, &"ab".repeat(32)).unwrap();
        let globals: Vec<(u32, GlobalType)> = layout
            .globals
            .iter()
            .map(|global| (global.index, global.ty))
            .collect();
        assert_eq!(
            globals,
            [
                (0, GlobalType::I32),
                (2, GlobalType::F64),
                (3, GlobalType::V128)
            ]
        );
        assert_eq!(layout.initial_memory_bytes, 2 * CHUNK_BYTES);
        assert_eq!(layout.module_digest, [0xab; 32]);
    }

    #[test]
    fn modules_whose_state_a_snapshot_cannot_capture_are_refused() {
        let grows_table = wasm(
            r#"(module
                 (memory (export "memory") 1)
                 (table 1 funcref)
                 (func (export "f") (drop (table.grow (ref.null func) (i32.const 1)))))"#,
        );
        assert!(instrument(&grows_table).unwrap_err().contains("table.grow"));

        let taken_name =
            wasm(r#"(module (memory (export "memory") 1) (func (export "__wizer_global_0")))"#);
        assert!(instrument(&taken_name)
            .unwrap_err()
            .contains("__wizer_global_0"));

        let two_memories = wasm(r#"(module (memory (export "memory") 1) (memory 1))"#);
        assert!(instrument(&two_memories)
            .unwrap_err()
            .contains("2 memories"));
    }
}
