//! `wasm-operator inspect FILE [--json]`: shows what an operator module is (ABI version,
//! capabilities, exports, imports, memory, size) as a table, or as the JSON of
//! `wasm_operator_abi::ModuleInfo`. A module that fails validation gets its problems instead, one
//! line each, and exit code 1.
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use wasm_operator_abi::validate::{ModuleInfo, WASM_PAGE_SIZE};

use super::validate::{capability_list, read_module};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The operator module (.wasm) to describe.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the description as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: Args) -> ExitCode {
    let shown = args.file.display();
    let mut stderr = io::stderr().lock();
    let bytes = match read_module(&args.file) {
        Ok(bytes) => bytes,
        Err(message) => {
            let _ = writeln!(stderr, "{shown}: {message}");
            return ExitCode::FAILURE;
        }
    };
    let info = match wasm_operator_abi::validate(&bytes) {
        Ok(info) => info,
        Err(error) => {
            for problem in &error.problems {
                let _ = writeln!(stderr, "{shown}: {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    let output = if args.json {
        match serde_json::to_string_pretty(&info) {
            Ok(json) => json,
            Err(error) => {
                let _ = writeln!(
                    stderr,
                    "{shown}: cannot write the description as JSON: {error}"
                );
                return ExitCode::FAILURE;
            }
        }
    } else {
        table(&args.file.display().to_string(), &info)
    };
    // A closed pipe (`| head`) is not an error worth a panic or a message.
    let _ = writeln!(io::stdout().lock(), "{output}");
    ExitCode::SUCCESS
}

/// The human-readable description.
fn table(file: &str, info: &ModuleInfo) -> String {
    let mut lines = vec![
        format!("file          {file}"),
        format!("size          {}", human_bytes(info.size_bytes)),
        format!("abi           v{}", info.abi_version),
        format!("capabilities  {}", capability_list(info)),
        format!(
            "initialize    {}",
            if info.has_initialize {
                "yes: _initialize runs once per fresh instance"
            } else {
                "no _initialize export"
            }
        ),
        format!("memory        {}", memory_description(info)),
        String::new(),
        format!("exports ({})", info.exports.len()),
    ];
    let export_names: Vec<String> = info
        .exports
        .iter()
        .map(|export| export.name.escape_debug().to_string())
        .collect();
    let name_width = export_names.iter().map(String::len).max().unwrap_or(0);
    for (export, name) in info.exports.iter().zip(&export_names) {
        let kind = export.kind.as_str();
        lines.push(format!(
            "  {name:<name_width$}  {kind:<6}  {}",
            export.signature
        ));
    }
    lines.push(String::new());
    lines.push(format!("imports ({})", info.imports.len()));
    let import_names: Vec<String> = info
        .imports
        .iter()
        .map(|import| {
            format!(
                "{}::{}",
                import.module.escape_debug(),
                import.name.escape_debug()
            )
        })
        .collect();
    let types: Vec<String> = info
        .imports
        .iter()
        .map(|import| format!("{} {}", import.kind, import.signature))
        .collect();
    let name_width = import_names.iter().map(String::len).max().unwrap_or(0);
    let type_width = types.iter().map(String::len).max().unwrap_or(0);
    for ((import, name), typed) in info.imports.iter().zip(&import_names).zip(&types) {
        let grant = match (import.capability, import.module.as_str()) {
            (Some(capability), _) => capability.as_str(),
            (None, wasm_operator_abi::names::IMPORT_MODULE) => "core",
            (None, _) => "wasi",
        };
        lines.push(format!(
            "  {name:<name_width$}  {typed:<type_width$}  {grant}"
        ));
    }
    lines.join("\n")
}

/// `17 pages initially (1.1 MiB), no maximum`.
fn memory_description(info: &ModuleInfo) -> String {
    let pages = |count: u64| {
        let noun = if count == 1 { "page" } else { "pages" };
        format!(
            "{count} {noun} ({})",
            human_size(count.saturating_mul(WASM_PAGE_SIZE))
        )
    };
    let maximum = match info.memory.maximum_pages {
        Some(maximum) => format!("maximum {}", pages(maximum)),
        None => "no maximum".to_owned(),
    };
    format!("{} initially, {maximum}", pages(info.memory.initial_pages))
}

/// `646321 bytes (631.2 KiB)`.
fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", human_size(bytes))
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
