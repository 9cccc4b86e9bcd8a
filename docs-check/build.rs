//! Writes `$OUT_DIR/sdk_rust_md.rs`: the Rust examples of docs/sdk-rust.md as modules (see
//! src/lib.rs for the comments that say how each block is compiled).
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

const PAGE: &str = "../docs/sdk-rust.md";

/// How one block is compiled, from its `<!-- doccheck: ... -->` comment.
#[derive(Default)]
struct Directive {
    module: Option<String>,
    into: Option<String>,
    uses: Vec<String>,
    imports: Vec<String>,
    body: bool,
    given: String,
    returns: Option<String>,
}

fn parse_directive(comment: &str) -> Directive {
    let mut directive = Directive::default();
    let mut rest = comment.trim();
    while !rest.is_empty() {
        let (word, after) = match rest.find([' ', '=']) {
            Some(end) => (&rest[..end], &rest[end..]),
            None => (rest, ""),
        };
        let (value, after) = match after.strip_prefix('=') {
            Some(value) if value.starts_with('"') => {
                let end = value[1..]
                    .find('"')
                    .expect("a quoted doccheck value is closed")
                    + 1;
                (value[1..end].to_owned(), &value[end + 1..])
            }
            Some(value) => {
                let end = value.find(' ').unwrap_or(value.len());
                (value[..end].to_owned(), &value[end..])
            }
            None => (String::new(), after),
        };
        match word {
            "module" => directive.module = Some(value),
            "in" => directive.into = Some(value),
            "uses" => directive.uses = value.split(',').map(str::to_owned).collect(),
            "imports" => {
                directive.imports = value
                    .split(';')
                    .map(str::trim)
                    .filter(|path| !path.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "body" => directive.body = true,
            "given" => directive.given = value,
            "returns" => directive.returns = Some(value),
            other => panic!("{PAGE}: unknown doccheck word `{other}`"),
        }
        rest = after.trim_start();
    }
    directive
}

fn main() {
    let page_path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(PAGE);
    println!("cargo:rerun-if-changed={}", page_path.display());
    let page = std::fs::read_to_string(&page_path).expect("reading docs/sdk-rust.md");

    // Module name -> its code, in the order first seen.
    let mut modules: BTreeMap<usize, (String, String)> = BTreeMap::new();
    let mut order_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending: Option<Directive> = None;
    let mut lines = page.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let trimmed = line.trim();
        if let Some(comment) = trimmed
            .strip_prefix("<!-- doccheck:")
            .and_then(|rest| rest.strip_suffix("-->"))
        {
            pending = Some(parse_directive(comment));
            continue;
        }
        if trimmed != "```rust" {
            if !trimmed.is_empty() {
                pending = None;
            }
            continue;
        }
        let fence_line = index + 1;
        let mut block = String::new();
        for (_, line) in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        let directive = pending.take().unwrap_or_default();
        let code = render_block(&directive, &block, fence_line);
        match &directive.into {
            Some(target) => {
                let order = *order_of
                    .get(target)
                    .unwrap_or_else(|| panic!("{PAGE}:{fence_line}: no module `{target}` before"));
                modules.get_mut(&order).unwrap().1.push_str(&code);
            }
            None => {
                let name = directive
                    .module
                    .clone()
                    .unwrap_or_else(|| format!("line_{fence_line}"));
                order_of.insert(name.clone(), fence_line);
                modules.insert(fence_line, (name, code));
            }
        }
    }

    let mut out = String::new();
    for (line, (name, code)) in modules {
        let _ = writeln!(
            out,
            "// {PAGE}:{line}\n#[allow(dead_code, unused_imports, unused_variables, unused_mut, unused_assignments, unreachable_code, clippy::all)]\npub mod {name} {{\n{code}}}\n"
        );
    }
    let out_path = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("sdk_rust_md.rs");
    std::fs::write(out_path, out).unwrap();
}

fn render_block(directive: &Directive, block: &str, fence_line: usize) -> String {
    let mut code = format!("// {PAGE}:{fence_line}\n");
    let wrapped = directive.body || !directive.uses.is_empty() || !directive.imports.is_empty();
    if wrapped {
        code.push_str("use wasm_operator_sdk::prelude::*;\n");
        for module in &directive.uses {
            let _ = writeln!(code, "use super::{module}::*;");
        }
        for path in &directive.imports {
            let _ = writeln!(code, "use {path};");
        }
    }
    if directive.body {
        let returns = directive.returns.as_deref().unwrap_or("Result<()>");
        let _ = writeln!(
            code,
            "pub fn example_{fence_line}({}) -> {returns} {{\n    let _ = {{\n{block}    }};\n    Ok(Default::default())\n}}",
            directive.given
        );
    } else {
        code.push_str(block);
    }
    code
}
