//! Every rule of `validate`: one hand-built module per rejection path, checked for the exact
//! problem and a one-line message that names the item and the fix, plus modules it must accept.

use wasm_operator_abi::validate::{ExternKind, MemoryInfo};
use wasm_operator_abi::{validate, Capability, Problem};

/// The core memory-protocol imports every SDK-built module has.
const CORE_IMPORTS: &str = r#"
  (import "wasm_operator" "input_read" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "result_write" (func (param i32 i32)))
  (import "wasm_operator" "response_read" (func (param i32 i32) (result i32)))"#;

const MARKER: &str = r#"(func (export "wasm_operator_abi_v1"))"#;
const MEMORY: &str = r#"(memory (export "memory") 2 16)"#;
const INITIALIZE: &str = r#"(func (export "_initialize"))"#;
const INIT: &str = r#"(func (export "wasm_operator_init") (param i32) (result i32) i32.const 0)"#;
const RECONCILE: &str =
    r#"(func (export "wasm_operator_reconcile") (param i32) (result i32) i32.const 0)"#;

/// A module from imports and definitions (WAT wants every import before any definition).
fn module(imports: &str, definitions: &[&str]) -> Vec<u8> {
    let text = format!("(module {imports}\n  {})", definitions.join("\n  "));
    wat::parse_str(&text)
        .unwrap_or_else(|error| panic!("test module does not assemble: {error}\n{text}"))
}

/// A valid module with `extra_imports` added and the definition containing `replace` swapped for
/// `with` (or dropped when `with` is empty).
fn valid_module_with(extra_imports: &str, replace: Option<(&str, &str)>) -> Vec<u8> {
    let mut definitions = vec![MEMORY, MARKER, INITIALIZE, INIT, RECONCILE];
    if let Some((old, new)) = replace {
        let position = definitions
            .iter()
            .position(|definition| *definition == old)
            .expect("known definition");
        if new.is_empty() {
            definitions.remove(position);
        } else {
            definitions[position] = new;
        }
    }
    module(&format!("{CORE_IMPORTS}{extra_imports}"), &definitions)
}

fn valid_module() -> Vec<u8> {
    valid_module_with("", None)
}

/// The problems `validate` reports, checking on the way that each prints as exactly one line.
fn problems(bytes: &[u8]) -> Vec<Problem> {
    let error = validate(bytes).expect_err("module should be rejected");
    assert!(
        !error.problems.is_empty(),
        "a ValidationError always holds a problem"
    );
    for problem in &error.problems {
        let line = problem.to_string();
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "not one line: {line:?}"
        );
    }
    assert_eq!(error.to_string().lines().count(), error.problems.len());
    error.problems
}

/// The only problem `validate` reports, with its message.
fn only_problem(bytes: &[u8]) -> (Problem, String) {
    let mut found = problems(bytes);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one problem, got {found:#?}"
    );
    let problem = found.remove(0);
    let line = problem.to_string();
    (problem, line)
}

// Accepted modules.

#[test]
fn accepts_a_minimal_valid_module_and_describes_it() {
    let bytes = valid_module_with(
        r#"
  (import "wasm_operator" "kube_request" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "log" (func (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        None,
    );
    let info = validate(&bytes).expect("valid module");
    assert_eq!(info.abi_version, 1);
    assert_eq!(
        info.capabilities,
        vec![Capability::Kubernetes, Capability::Log]
    );
    assert!(info.has_initialize);
    assert_eq!(
        info.memory,
        MemoryInfo {
            initial_pages: 2,
            maximum_pages: Some(16)
        }
    );
    assert_eq!(info.size_bytes, bytes.len() as u64);

    let export_names: Vec<_> = info
        .exports
        .iter()
        .map(|export| export.name.as_str())
        .collect();
    assert_eq!(
        export_names,
        [
            "memory",
            "wasm_operator_abi_v1",
            "_initialize",
            "wasm_operator_init",
            "wasm_operator_reconcile"
        ]
    );
    let init = info
        .exports
        .iter()
        .find(|export| export.name == "wasm_operator_init")
        .unwrap();
    assert_eq!(
        (init.kind, init.signature.as_str()),
        (ExternKind::Func, "[i32] -> [i32]")
    );
    let memory = info
        .exports
        .iter()
        .find(|export| export.name == "memory")
        .unwrap();
    assert_eq!(
        (memory.kind, memory.signature.as_str()),
        (ExternKind::Memory, "2 pages, maximum 16")
    );

    assert_eq!(info.imports.len(), 6);
    let kube = info
        .imports
        .iter()
        .find(|import| import.name == "kube_request")
        .unwrap();
    assert_eq!(kube.module, "wasm_operator");
    assert_eq!(kube.signature, "[i32, i32] -> [i32]");
    assert_eq!(kube.capability, Some(Capability::Kubernetes));
    let input_read = info
        .imports
        .iter()
        .find(|import| import.name == "input_read")
        .unwrap();
    assert_eq!(input_read.capability, None, "core imports need no grant");
    let fd_write = info
        .imports
        .iter()
        .find(|import| import.name == "fd_write")
        .unwrap();
    assert_eq!(
        (fd_write.module.as_str(), fd_write.capability),
        ("wasi_snapshot_preview1", None)
    );
}

#[test]
fn accepts_a_module_without_initialize_or_imports_like_a_rust_cdylib() {
    // Rust cdylibs export neither `_initialize` nor `_start`, and add `__data_end`/`__heap_base`.
    let bytes = module(
        "",
        &[
            r#"(memory (export "memory") 17)"#,
            r#"(global (export "__data_end") i32 (i32.const 1024))"#,
            r#"(global (export "__heap_base") i32 (i32.const 2048))"#,
            MARKER,
            INIT,
            RECONCILE,
        ],
    );
    let info = validate(&bytes).expect("valid module");
    assert!(!info.has_initialize);
    assert!(info.capabilities.is_empty());
    assert!(info.imports.is_empty());
    assert_eq!(
        info.memory,
        MemoryInfo {
            initial_pages: 17,
            maximum_pages: None
        }
    );
}

#[test]
fn accepts_start_when_initialize_is_also_exported() {
    let bytes = valid_module_with("", None);
    assert!(validate(&bytes).is_ok());
    let with_start = module(
        CORE_IMPORTS,
        &[
            MEMORY,
            MARKER,
            INITIALIZE,
            r#"(func (export "_start"))"#,
            INIT,
            RECONCILE,
        ],
    );
    assert!(
        validate(&with_start).is_ok(),
        "the host calls _initialize and never _start"
    );
}

#[test]
fn reports_every_capability_once_and_sorted() {
    let bytes = valid_module_with(
        r#"
  (import "wasm_operator" "log" (func (param i32 i32)))
  (import "wasm_operator" "http_request" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "kube_request" (func (param i32 i32) (result i32)))"#,
        None,
    );
    let info = validate(&bytes).expect("valid module");
    assert_eq!(
        info.capabilities,
        vec![Capability::Kubernetes, Capability::Http, Capability::Log]
    );
}

#[test]
fn module_info_serializes_to_camel_case_json() {
    let info = validate(&valid_module()).expect("valid module");
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["abiVersion"], 1);
    assert_eq!(json["memory"]["initialPages"], 2);
    assert_eq!(json["hasInitialize"], true);
    assert_eq!(json["exports"][0]["kind"], "memory");
    let parsed: wasm_operator_abi::ModuleInfo = serde_json::from_value(json).unwrap();
    assert_eq!(parsed, info);
}

// Not a core module at all: validation stops at the first problem.

#[test]
fn rejects_an_empty_file() {
    let (problem, line) = only_problem(&[]);
    assert!(matches!(problem, Problem::NotWasm { .. }));
    assert!(line.contains("empty"), "{line}");
}

#[test]
fn rejects_bytes_without_the_wasm_magic() {
    let (problem, line) = only_problem(b"\x7fELF\x02\x01\x01\0 not wasm at all");
    assert!(matches!(problem, Problem::NotWasm { .. }));
    assert!(line.contains("magic"), "{line}");
}

#[test]
fn rejects_wasm_text_with_a_hint_to_compile_it() {
    let (problem, line) = only_problem(b";; an operator\n(module (memory 1))\n");
    assert!(matches!(problem, Problem::NotWasm { .. }));
    assert!(line.contains("wat2wasm"), "{line}");
}

#[test]
fn rejects_a_component_and_says_to_build_for_wasip1() {
    let component = wasm_encoder::Component::new().finish();
    let (problem, line) = only_problem(&component);
    assert_eq!(problem, Problem::Component);
    assert!(
        line.contains("component") && line.contains("wasm32-wasip1"),
        "{line}"
    );

    // An older component encoding version is still a component, not "unknown version".
    let (problem, _) = only_problem(b"\0asm\x0a\0\x01\0");
    assert_eq!(problem, Problem::Component);
}

#[test]
fn rejects_a_truncated_module_naming_the_offset() {
    let bytes = valid_module();
    for length in [4, 7, 9, 10, bytes.len() / 2, bytes.len() - 1] {
        let (problem, line) = only_problem(&bytes[..length]);
        match problem {
            Problem::InvalidWasm { offset, .. } => {
                assert!(offset <= length, "offset {offset} past {length}")
            }
            other => panic!("truncated at {length}: {other:?}"),
        }
        assert!(line.contains("byte offset"), "{line}");
    }
}

#[test]
fn rejects_a_module_that_does_not_validate() {
    // The body returns nothing although the type promises an i32.
    let bytes = module(
        CORE_IMPORTS,
        &[
            MEMORY,
            MARKER,
            INIT,
            r#"(func (export "wasm_operator_reconcile") (param i32) (result i32))"#,
        ],
    );
    let (problem, line) = only_problem(&bytes);
    assert!(
        matches!(problem, Problem::InvalidWasm { .. }),
        "{problem:?}"
    );
    assert!(line.contains("type mismatch"), "{line}");
}

#[test]
fn rejects_an_unknown_module_version() {
    let mut bytes = valid_module();
    bytes[4] = 2;
    let (problem, _) = only_problem(&bytes);
    assert!(
        matches!(problem, Problem::InvalidWasm { offset: 4, .. }),
        "{problem:?}"
    );
}

// The version marker.

#[test]
fn rejects_a_module_without_marker() {
    let bytes = valid_module_with("", Some((MARKER, "")));
    let (problem, line) = only_problem(&bytes);
    assert_eq!(problem, Problem::MissingMarker);
    assert!(
        line.contains("export a function named `wasm_operator_abi_v1` of type func [] -> []")
            && line.contains("export_name(\"wasm_operator_abi_v1\")")
            && line.contains("or use a wasm-operator SDK"),
        "says what to do in any language, and with an SDK: {line}"
    );
}

#[test]
fn rejects_two_markers() {
    let bytes = valid_module_with(
        "",
        Some((
            MARKER,
            r#"(func (export "wasm_operator_abi_v1")) (func (export "wasm_operator_abi_v2"))"#,
        )),
    );
    let (problem, line) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::MultipleMarkers {
            names: vec!["wasm_operator_abi_v1".into(), "wasm_operator_abi_v2".into()]
        }
    );
    assert!(
        line.contains("`wasm_operator_abi_v1`, `wasm_operator_abi_v2`"),
        "{line}"
    );
}

#[test]
fn rejects_an_unsupported_version_without_judging_it_by_v1_rules() {
    // A v2 module may well have other exports and imports: only the version is reported.
    let bytes = module(
        r#"(import "wasm_operator" "kube_watch" (func (param i32 i32) (result i32)))"#,
        &[
            MEMORY,
            r#"(func (export "wasm_operator_abi_v2"))"#,
            r#"(func (export "wasm_operator_handle") (param i32 i32) (result i32) i32.const 0)"#,
        ],
    );
    let (problem, line) = only_problem(&bytes);
    assert_eq!(problem, Problem::UnsupportedVersion { version: 2 });
    assert!(
        line.contains("ABI v2") && line.contains("supports v1") && line.contains("upgrade"),
        "{line}"
    );
}

#[test]
fn rejects_a_malformed_marker() {
    let bytes = valid_module_with(
        "",
        Some((MARKER, r#"(func (export "wasm_operator_abi_v01"))"#)),
    );
    let (problem, line) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::MalformedMarker {
            name: "wasm_operator_abi_v01".into()
        }
    );
    assert!(line.contains("`wasm_operator_abi_v01`"), "{line}");
}

#[test]
fn rejects_a_marker_with_a_signature() {
    let bytes = valid_module_with(
        "",
        Some((
            MARKER,
            r#"(func (export "wasm_operator_abi_v1") (result i32) i32.const 1)"#,
        )),
    );
    let (problem, line) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::WrongExportType {
            name: "wasm_operator_abi_v1".into(),
            expected: "func [] -> []".into(),
            found: "func [] -> [i32]".into(),
        }
    );
    assert!(
        line.contains("`wasm_operator_abi_v1` is func [] -> [i32]"),
        "{line}"
    );
}

#[test]
fn rejects_a_marker_that_is_a_global() {
    let bytes = valid_module_with(
        "",
        Some((
            MARKER,
            r#"(global (export "wasm_operator_abi_v1") i32 (i32.const 1))"#,
        )),
    );
    let (problem, _) = only_problem(&bytes);
    assert!(
        matches!(&problem, Problem::WrongExportType { found, .. } if found == "global i32"),
        "{problem:?}"
    );
}

// Required exports.

#[test]
fn rejects_missing_init_reconcile_and_memory_each_by_name() {
    for (definition, name) in [
        (INIT, "wasm_operator_init"),
        (RECONCILE, "wasm_operator_reconcile"),
        (MEMORY, "memory"),
    ] {
        let bytes = valid_module_with(
            "",
            Some((definition, if name == "memory" { "(memory 1)" } else { "" })),
        );
        let (problem, line) = only_problem(&bytes);
        assert!(
            matches!(&problem, Problem::MissingExport { name: missing, .. } if missing == name),
            "{problem:?}"
        );
        assert!(line.contains(&format!("missing export `{name}`")), "{line}");
        let fix = if name == "memory" {
            "export the module's linear memory as `memory`".to_owned()
        } else {
            format!("export a function named `{name}` of type func [i32] -> [i32]")
        };
        assert!(
            line.contains(&fix),
            "says what to export in any language: {line}"
        );
    }
}

#[test]
fn rejects_init_and_reconcile_with_the_wrong_signature() {
    let wrong_init =
        r#"(func (export "wasm_operator_init") (param i32 i32) (result i32) i32.const 0)"#;
    let (problem, line) = only_problem(&valid_module_with("", Some((INIT, wrong_init))));
    assert_eq!(
        problem,
        Problem::WrongExportType {
            name: "wasm_operator_init".into(),
            expected: "func [i32] -> [i32]".into(),
            found: "func [i32, i32] -> [i32]".into(),
        }
    );
    assert!(line.contains("wasm_operator_init"), "{line}");

    let wrong_reconcile =
        r#"(func (export "wasm_operator_reconcile") (param i64) (result i64) i64.const 0)"#;
    let (problem, _) = only_problem(&valid_module_with("", Some((RECONCILE, wrong_reconcile))));
    assert!(
        matches!(&problem, Problem::WrongExportType { name, found, .. } if name == "wasm_operator_reconcile" && found == "func [i64] -> [i64]"),
        "{problem:?}"
    );
}

#[test]
fn rejects_an_export_called_memory_that_is_not_a_memory() {
    let bytes = valid_module_with("", Some((MEMORY, r#"(memory 1) (func (export "memory"))"#)));
    let (problem, _) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::WrongExportType {
            name: "memory".into(),
            expected: "memory".into(),
            found: "func [] -> []".into()
        }
    );
}

#[test]
fn rejects_initialize_with_a_signature() {
    let bytes = valid_module_with(
        "",
        Some((INITIALIZE, r#"(func (export "_initialize") (param i32))"#)),
    );
    let (problem, _) = only_problem(&bytes);
    assert!(
        matches!(&problem, Problem::WrongExportType { name, .. } if name == "_initialize"),
        "{problem:?}"
    );
}

#[test]
fn rejects_a_command_module_and_says_how_to_build_a_reactor() {
    let bytes = valid_module_with("", Some((INITIALIZE, r#"(func (export "_start"))"#)));
    let (problem, line) = only_problem(&bytes);
    assert_eq!(problem, Problem::CommandModule);
    assert!(
        line.contains("-buildmode=c-shared")
            && line.contains("cdylib")
            && line.contains("-mexec-model=reactor"),
        "{line}"
    );
}

// Memories.

#[test]
fn rejects_a_64_bit_memory() {
    let bytes = valid_module_with("", Some((MEMORY, r#"(memory (export "memory") i64 1)"#)));
    let (problem, line) = only_problem(&bytes);
    assert_eq!(problem, Problem::Memory64 { index: 0 });
    assert!(
        line.contains("64-bit") && line.contains("wasm32-wasip1"),
        "{line}"
    );
}

#[test]
fn rejects_a_shared_memory() {
    let bytes = valid_module_with(
        "",
        Some((MEMORY, r#"(memory (export "memory") 1 2 shared)"#)),
    );
    let (problem, _) = only_problem(&bytes);
    assert_eq!(problem, Problem::SharedMemory { index: 0 });
}

// Imports.

#[test]
fn rejects_imported_memory_table_and_global() {
    let bytes = module(
        &format!(
            r#"{CORE_IMPORTS}
  (import "env" "memory" (memory 1))
  (import "env" "__indirect_function_table" (table 1 funcref))
  (import "wasm_operator" "stack_pointer" (global (mut i32)))"#
        ),
        &[r#"(export "memory" (memory 0))"#, MARKER, INIT, RECONCILE],
    );
    let found = problems(&bytes);
    assert_eq!(
        found,
        vec![
            Problem::ImportedNonFunction {
                module: "env".into(),
                name: "memory".into(),
                kind: "memory".into()
            },
            Problem::ImportedNonFunction {
                module: "env".into(),
                name: "__indirect_function_table".into(),
                kind: "table".into()
            },
            Problem::ImportedNonFunction {
                module: "wasm_operator".into(),
                name: "stack_pointer".into(),
                kind: "global".into()
            },
        ]
    );
    assert!(found[0]
        .to_string()
        .contains("imports memory `env::memory`"));
}

#[test]
fn rejects_an_unknown_host_function() {
    let bytes = valid_module_with(
        r#"(import "wasm_operator" "kube_watch" (func (param i32 i32) (result i32)))"#,
        None,
    );
    let (problem, line) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::UnknownHostFunction {
            name: "kube_watch".into()
        }
    );
    assert!(
        line.contains("`wasm_operator::kube_watch`") && line.contains("kube_request"),
        "{line}"
    );
}

#[test]
fn rejects_a_host_function_with_the_wrong_signature() {
    let bytes = valid_module_with(
        r#"(import "wasm_operator" "log" (func (param i32 i32) (result i32)))"#,
        None,
    );
    let (problem, line) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::WrongImportType {
            module: "wasm_operator".into(),
            name: "log".into(),
            expected: "func [i32, i32] -> []".into(),
            found: "func [i32, i32] -> [i32]".into(),
        }
    );
    assert!(line.contains("`wasm_operator::log`"), "{line}");
    assert!(
        line.contains("every parameter and result is an i32") && line.contains("int32_t"),
        "says what the type is in the languages operators are written in: {line}"
    );
}

#[test]
fn rejects_an_unknown_wasi_function() {
    let bytes = valid_module_with(
        r#"(import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32)))"#,
        None,
    );
    let (problem, _) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::UnknownWasiFunction {
            name: "sock_open".into()
        }
    );
}

#[test]
fn rejects_an_import_from_another_module() {
    let bytes = valid_module_with(r#"(import "env" "undefined_symbol" (func))"#, None);
    let (problem, line) = only_problem(&bytes);
    assert_eq!(
        problem,
        Problem::UnknownImportModule {
            module: "env".into(),
            name: "undefined_symbol".into()
        }
    );
    assert!(
        line.contains("`env::undefined_symbol`") && line.contains("wasi_snapshot_preview1"),
        "{line}"
    );
}

#[test]
fn rejects_wasip2_style_imports() {
    let bytes = valid_module_with(
        r#"(import "wasi:cli/environment@0.2.0" "get-environment" (func (param i32)))"#,
        None,
    );
    let (problem, _) = only_problem(&bytes);
    assert!(
        matches!(problem, Problem::UnknownImportModule { .. }),
        "{problem:?}"
    );
}

// Everything at once.

#[test]
fn collects_every_problem_of_a_module() {
    let bytes = module(
        r#"
  (import "env" "foo" (func))
  (import "wasm_operator" "log" (func (param i32)))"#,
        &[
            r#"(memory (export "memory") i64 1)"#,
            r#"(func (export "_start"))"#,
            INIT,
        ],
    );
    let found = problems(&bytes);
    assert_eq!(
        found,
        vec![
            Problem::MissingMarker,
            Problem::MissingExport {
                name: "wasm_operator_reconcile".into(),
                expected: "func [i32] -> [i32]".into()
            },
            Problem::CommandModule,
            Problem::Memory64 { index: 0 },
            Problem::UnknownImportModule {
                module: "env".into(),
                name: "foo".into()
            },
            Problem::WrongImportType {
                module: "wasm_operator".into(),
                name: "log".into(),
                expected: "func [i32, i32] -> []".into(),
                found: "func [i32] -> []".into(),
            },
        ]
    );
}

#[test]
fn names_with_line_breaks_stay_on_one_line() {
    let bytes = valid_module_with(r#"(import "env" "evil\nname" (func))"#, None);
    let (_, line) = only_problem(&bytes);
    assert!(line.contains(r"evil\nname"), "{line}");
}
