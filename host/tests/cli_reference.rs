//! docs/cli.md is the reference generated from the command definitions: a flag added, renamed or
//! re-described without regenerating the page fails here.
use std::path::PathBuf;

use wasm_operator::cli::reference::{markdown, REGENERATE};

#[test]
fn docs_cli_md_is_generated_from_the_command_definitions() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/cli.md");
    let generated = markdown();
    if std::env::var_os("WASM_OPERATOR_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    if written == generated {
        return;
    }
    let (line, (old, new)) = written
        .lines()
        .chain(std::iter::repeat(""))
        .zip(generated.lines().chain(std::iter::repeat("")))
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .map(|(index, lines)| (index + 1, lines))
        .unwrap_or((0, ("", "")));
    panic!(
        "docs/cli.md is out of date with the command definitions; regenerate it with\n  {REGENERATE}\n\
         first difference, line {line}:\n  docs/cli.md: {old}\n  generated:   {new}"
    );
}

#[test]
fn every_subcommand_and_flag_is_on_the_page() {
    use clap::CommandFactory;
    let page = markdown();
    let root = wasm_operator::cli::Cli::command();
    for command in root.get_subcommands() {
        assert!(
            page.contains(&format!("## wasm-operator {}", command.get_name())),
            "{} missing",
            command.get_name()
        );
        for arg in command.get_arguments().filter(|arg| !arg.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(
                    page.contains(&format!("`--{long}")),
                    "--{long} of {} missing",
                    command.get_name()
                );
            }
        }
    }
}

/// The `run` config file's keys (docs/running.md's example) each have their flag: `swapAfter` is
/// `--swap-after`, a list key takes its singular, repeatable flag (`operators`: `--operator`).
#[test]
fn every_key_of_the_run_config_file_has_a_flag() {
    use clap::CommandFactory;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/running.md");
    let running = std::fs::read_to_string(path).unwrap();
    let example = running
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/running.md has a YAML example of the run config file");
    let root = wasm_operator::cli::Cli::command();
    let run = root.find_subcommand("run").unwrap();
    let flags: Vec<&str> = run
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .collect();
    let keys: Vec<&str> = example
        .lines()
        .filter(|line| !line.starts_with(' ') && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':').map(|(key, _)| key))
        .collect();
    assert!(keys.len() >= 15, "keys read from the example: {keys:?}");
    for key in keys {
        let kebab: String = key
            .chars()
            .flat_map(|c| {
                let dash = c.is_ascii_uppercase().then_some('-');
                dash.into_iter()
                    .chain(std::iter::once(c.to_ascii_lowercase()))
            })
            .collect();
        let singular = [kebab.strip_suffix("es"), kebab.strip_suffix('s')];
        let found = std::iter::once(Some(kebab.as_str()))
            .chain(singular)
            .flatten()
            .any(|name| flags.contains(&name));
        assert!(
            found,
            "config key {key} has no flag --{kebab} (or singular) on `run`"
        );
    }
}
