//! The command-line reference, docs/cli.md, written from the clap definitions themselves, so
//! every subcommand and flag is documented with the help text `--help` prints and the page
//! cannot drift from the binary (host/tests/cli_reference.rs compares the two).
use std::fmt::Write;

use clap::{Arg, ArgAction, Command, CommandFactory};

use super::Cli;

/// How to bring docs/cli.md up to date after changing a flag.
pub const REGENERATE: &str =
    "WASM_OPERATOR_UPDATE_DOCS=1 cargo test -p wasm-operator --test cli_reference";

/// The whole page, in Markdown.
pub fn markdown() -> String {
    let mut root = Cli::command();
    // Building fills in what clap derives lazily: bin names for the usage lines, `--help`.
    root.build();
    let mut page = String::new();
    let _ = writeln!(page, "# Command-line reference\n");
    let _ = writeln!(
        page,
        "<!-- Generated from the clap definitions in host/src/cli; do not edit. Regenerate with:\n     {REGENERATE} -->\n"
    );
    if let Some(about) = root.get_about() {
        let _ = writeln!(page, "`{}`: {about}.\n", root.get_name());
    }
    let _ = writeln!(
        page,
        "Every flag below is also described by `{} <command> --help` (`-h`). Durations are written like \
         `30s`, `5m` or `1h`; sizes like `256Mi`. Where a command also reads a config file, a \
         flag given on the command line wins over the file.\n",
        root.get_name()
    );
    let _ = writeln!(page, "| command | what it does |\n|---|---|");
    for command in subcommands(&root) {
        let _ = writeln!(
            page,
            "| [`{}`](#{}) | {} |",
            command.get_name(),
            anchor(&command_line(&root, command)),
            one_line(&about(command))
        );
    }
    for command in subcommands(&root) {
        write_command(&mut page, &root, command);
    }
    page
}

fn subcommands(root: &Command) -> impl Iterator<Item = &Command> {
    root.get_subcommands()
        .filter(|command| command.get_name() != "help" && !command.is_hide_set())
}

fn command_line(root: &Command, command: &Command) -> String {
    format!("{} {}", root.get_name(), command.get_name())
}

fn about(command: &Command) -> String {
    command
        .get_long_about()
        .or(command.get_about())
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn write_command(page: &mut String, root: &Command, command: &Command) {
    let _ = writeln!(page, "\n## {}\n", command_line(root, command));
    let _ = writeln!(page, "{}\n", about(command));
    let usage = command.clone().render_usage().to_string();
    let _ = writeln!(page, "```text\n{}\n```\n", usage.trim_end());
    // `--help` and `--version` are the same everywhere; the page says so once.
    let arguments: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !matches!(arg.get_id().as_str(), "help" | "version"))
        .collect();
    let positionals: Vec<&Arg> = arguments
        .iter()
        .copied()
        .filter(|arg| arg.is_positional())
        .collect();
    if !positionals.is_empty() {
        let _ = writeln!(page, "Arguments:\n");
        for arg in positionals {
            write_arg(page, arg);
        }
        let _ = writeln!(page);
    }
    let _ = writeln!(page, "Options:\n");
    for arg in arguments.iter().filter(|arg| !arg.is_positional()) {
        write_arg(page, arg);
    }
}

fn write_arg(page: &mut String, arg: &Arg) {
    let mut notes = Vec::new();
    if arg.is_required_set() {
        notes.push("required".to_owned());
    }
    if matches!(arg.get_action(), ArgAction::Append) {
        notes.push("repeatable".to_owned());
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| format!("`{}`", value.to_string_lossy()))
        .collect();
    if !defaults.is_empty() && arg.get_action().takes_values() {
        notes.push(format!("default {}", defaults.join(", ")));
    }
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| format!("`{}`", value.get_name()))
        .collect();
    if !values.is_empty() && arg.get_action().takes_values() {
        notes.push(format!("one of {}", values.join(", ")));
    }
    if let Some(variable) = arg.get_env() {
        notes.push(format!("environment `{}`", variable.to_string_lossy()));
    }
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    // Continuation paragraphs are indented so they stay in the list item.
    let help = help.trim().replace("\n\n", "\n\n  ").replace('\n', "\n  ");
    let _ = writeln!(page, "- `{}`{notes}: {help}", spelling(arg));
}

/// How the argument is written: `--flag <VALUE>`, `-f, --flag`, `<FILE>...`.
fn spelling(arg: &Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|name| format!("<{name}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
    if arg.is_positional() {
        let many = matches!(arg.get_action(), ArgAction::Append)
            || arg
                .get_num_args()
                .is_some_and(|range| range.max_values() > 1);
        return if many { format!("{value}...") } else { value };
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let names = names.join(", ");
    if arg.get_action().takes_values() {
        format!("{names} {value}")
    } else {
        names
    }
}

fn one_line(text: &str) -> String {
    text.split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ")
        .replace('|', "\\|")
}

/// GitHub's heading anchor: lower case, spaces to dashes, other punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
