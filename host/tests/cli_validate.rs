//! `wasm-operator validate` and `wasm-operator inspect`, run as the built binary on module files:
//! exit codes, and exactly one clear line per problem naming the file and what is wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;
use wasm_operator_abi::{Capability, ModuleInfo};

const BINARY: &str = env!("CARGO_BIN_EXE_wasm-operator");

const VALID_MODULE: &str = r#"
(module
  (import "wasm_operator" "input_read" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "result_write" (func (param i32 i32)))
  (import "wasm_operator" "response_read" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "kube_request" (func (param i32 i32) (result i32)))
  (import "wasm_operator" "log" (func (param i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "wasm_operator_abi_v1"))
  (func (export "_initialize"))
  (func (export "wasm_operator_init") (param i32) (result i32) i32.const 0)
  (func (export "wasm_operator_reconcile") (param i32) (result i32) i32.const 0))"#;

/// Module files in a temporary directory.
struct Modules {
    dir: TempDir,
}

impl Modules {
    fn new() -> Self {
        Modules {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write module");
        path
    }

    fn write_wat(&self, name: &str, text: &str) -> PathBuf {
        self.write(name, &wat::parse_str(text).expect("test module assembles"))
    }

    /// The valid module with one piece of text replaced.
    fn write_variant(&self, name: &str, from: &str, to: &str) -> PathBuf {
        assert!(
            VALID_MODULE.contains(from),
            "{from} is not in the valid module"
        );
        self.write_wat(name, &VALID_MODULE.replacen(from, to, 1))
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .output()
        .expect("run wasm-operator")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("output is UTF-8")
}

/// Runs `validate FILE`, expects failure, and returns the one line it printed.
fn single_failure_line(path: &Path) -> String {
    let shown = path.to_str().unwrap();
    let output = run(&["validate", shown]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        text(&output.stderr)
    );
    assert_eq!(
        text(&output.stdout),
        "",
        "a failing module prints nothing on stdout"
    );
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected exactly one line, got:\n{stderr}");
    let prefix = format!("{shown}: ");
    assert!(
        lines[0].starts_with(&prefix),
        "the line must start with the file name: {}",
        lines[0]
    );
    lines[0][prefix.len()..].to_owned()
}

#[test]
fn random_bytes_are_not_a_module() {
    let modules = Modules::new();
    // Fixed "random" bytes: a deterministic xorshift stream.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let line = single_failure_line(&modules.write("random.wasm", &bytes));
    assert!(
        line.starts_with("not a WebAssembly module:") && line.contains("magic"),
        "{line}"
    );
}

#[test]
fn a_truncated_module_names_the_offset() {
    let modules = Modules::new();
    let bytes = wat::parse_str(VALID_MODULE).unwrap();
    let line = single_failure_line(&modules.write("truncated.wasm", &bytes[..bytes.len() - 7]));
    assert!(
        line.starts_with("invalid WebAssembly at byte offset "),
        "{line}"
    );
    assert!(line.contains("truncated or corrupt"), "{line}");
}

#[test]
fn a_component_is_told_to_build_for_wasip1() {
    let modules = Modules::new();
    let line = single_failure_line(
        &modules.write("component.wasm", &wasm_encoder::Component::new().finish()),
    );
    assert!(
        line.starts_with("this is a WebAssembly component;"),
        "{line}"
    );
    assert!(
        line.contains("build for wasm32-wasip1 (not wasip2)"),
        "{line}"
    );
}

#[test]
fn a_command_module_is_told_to_build_a_reactor() {
    let modules = Modules::new();
    let path = modules.write_variant(
        "command.wasm",
        r#"(export "_initialize")"#,
        r#"(export "_start")"#,
    );
    let line = single_failure_line(&path);
    assert!(
        line.contains("exports `_start` but not `_initialize`"),
        "{line}"
    );
    assert!(
        line.contains("-buildmode=c-shared") && line.contains("cdylib"),
        "{line}"
    );
}

#[test]
fn an_unknown_imported_function_is_named() {
    let modules = Modules::new();
    let path = modules.write_variant(
        "unknown-import.wasm",
        r#"(import "wasm_operator" "log" (func (param i32 i32)))"#,
        r#"(import "wasm_operator" "spawn_thread" (func (param i32 i32)))"#,
    );
    let line = single_failure_line(&path);
    assert!(
        line.starts_with("imports `wasm_operator::spawn_thread`, which ABI v1 does not provide"),
        "{line}"
    );

    let path = modules.write_variant(
        "env-import.wasm",
        r#"(import "wasm_operator" "log" (func (param i32 i32)))"#,
        r#"(import "env" "missing_symbol" (func (param i32 i32)))"#,
    );
    let line = single_failure_line(&path);
    assert!(line.starts_with("imports `env::missing_symbol`"), "{line}");
}

#[test]
fn a_wrong_export_signature_is_named_with_both_types() {
    let modules = Modules::new();
    let path = modules.write_variant(
        "wrong-signature.wasm",
        r#"(func (export "wasm_operator_init") (param i32) (result i32) i32.const 0)"#,
        r#"(func (export "wasm_operator_init") (param i32 i32) (result i32) i32.const 0)"#,
    );
    let line = single_failure_line(&path);
    assert_eq!(
        line,
        "export `wasm_operator_init` is func [i32, i32] -> [i32], but the ABI requires func [i32] -> [i32]: \
         export it with exactly that type (every parameter and result is an i32: \
         `int32_t`/`uint32_t` or a pointer in C, `uint32`/`int32` in Go, `u32`/`i32` in Rust; \
         a wasm-operator SDK does)"
    );
}

#[test]
fn a_valid_module_passes_with_its_capabilities() {
    let modules = Modules::new();
    let path = modules.write_wat("operator.wasm", VALID_MODULE);
    let shown = path.to_str().unwrap();
    let output = run(&["validate", shown]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    assert_eq!(
        text(&output.stdout),
        format!("{shown}: ok (abi v1, capabilities: kubernetes, log)\n")
    );
    assert_eq!(text(&output.stderr), "");
}

#[test]
fn a_module_larger_than_the_memory_limit_passes_with_a_warning() {
    let modules = Modules::new();
    // 257 pages: what Zig's default 16 MiB stack gives a C module.
    let path = modules.write_wat(
        "big.wasm",
        &VALID_MODULE.replace(
            r#"(memory (export "memory") 2)"#,
            r#"(memory (export "memory") 257)"#,
        ),
    );
    let shown = path.to_str().unwrap();

    let output = run(&["validate", "--memory-limit", "16Mi", shown]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a warning does not fail validation"
    );
    assert!(text(&output.stdout).starts_with(&format!("{shown}: ok (")));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "{shown}: warning: the module's initial memory is 257 pages (16.06 MiB), more than \
             the memory limit of 16 MiB: raise"
        )) && stderr.contains("stack-size"),
        "{stderr}"
    );

    let output = run(&["validate", shown]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stderr), "", "it fits the default 64 MiB limit");
}

#[test]
fn several_files_report_each_and_fail_if_any_fails() {
    let modules = Modules::new();
    let good = modules.write_wat("good.wasm", VALID_MODULE);
    let bad = modules.write("bad.wasm", b"");
    let missing = modules.dir.path().join("missing.wasm");
    let output = run(&[
        "validate",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout).lines().count(), 1, "one ok line");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        format!(
            "{}: not a WebAssembly module: the file is empty",
            bad.display()
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}: cannot read: No such file or directory",
            missing.display()
        )),
        "{}",
        lines[1]
    );
}

#[test]
fn a_directory_is_unreadable_not_a_crash() {
    let modules = Modules::new();
    let output = run(&["validate", modules.dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot read:"), "{stderr}");
}

#[test]
fn validate_without_files_is_a_usage_error() {
    let output = run(&["validate"]);
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
}

#[test]
fn inspect_prints_a_table() {
    let modules = Modules::new();
    let path = modules.write_wat("operator.wasm", VALID_MODULE);
    let output = run(&["inspect", path.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let stdout = text(&output.stdout);
    for expected in [
        "abi           v1",
        "capabilities  kubernetes, log",
        "memory        2 pages (128.0 KiB) initially, no maximum",
        "exports (5)",
        "imports (6)",
        "wasm_operator_init",
        "func    [i32] -> [i32]",
        "wasm_operator::kube_request",
        "kubernetes",
        "wasi_snapshot_preview1::fd_write",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn inspect_json_is_module_info() {
    let modules = Modules::new();
    let bytes = wat::parse_str(VALID_MODULE).unwrap();
    let path = modules.write("operator.wasm", &bytes);
    let output = run(&["inspect", path.to_str().unwrap(), "--json"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        text(&output.stderr)
    );
    let info: ModuleInfo =
        serde_json::from_slice(&output.stdout).expect("stdout is ModuleInfo JSON");
    assert_eq!(info, wasm_operator_abi::validate(&bytes).unwrap());
    assert_eq!(info.capabilities, [Capability::Kubernetes, Capability::Log]);
}

#[test]
fn inspect_of_an_invalid_module_prints_its_problems() {
    let modules = Modules::new();
    let path = modules.write_variant(
        "command.wasm",
        r#"(export "_initialize")"#,
        r#"(export "_start")"#,
    );
    let output = run(&["inspect", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("command module"), "{stderr}");
}
