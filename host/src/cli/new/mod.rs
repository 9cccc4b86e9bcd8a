//! `wasm-operator new`: writes a ready operator project, in Rust or Go, for one kind: build
//! files, the kind's CRD, a reconcile skeleton (finalizer, cleanup hook, status with
//! `observedGeneration` and a `Ready` condition), a unit test against the SDK's fake host, and a
//! README with the commands to build, test, run and deploy it.
//!
//! - [`names`]: the operator's name and kind, checked, and everything derived from them.
//! - [`sdk`]: where the SDK the project builds against is.
//! - [`templates`]: the project's files, as templates compiled into the binary.
//! - [`project`]: writing them, never over existing files.
use std::path::PathBuf;
use std::process::ExitCode;

pub mod names;
pub mod project;
pub mod sdk;
pub mod templates;

/// The language of the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Go,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The operator's name: a DNS-1123 label starting with a letter (e.g. backup-runner). It is
    /// also the crate or Go module name and the module's file name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Language of the project: `rust` (the `wasm-operator-sdk` crate) or `go` (module
    /// `wasm-operator.dev/sdk-go`; builds with standard Go and TinyGo)
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The kind the operator reconciles, as GROUP/VERSION/KIND (e.g. example.com/v1alpha1/Widget)
    /// [default: NAME.example.com/v1alpha1/ followed by NAME in CamelCase]
    #[arg(long, value_name = "GROUP/VERSION/KIND")]
    pub kind: Option<String>,
    /// Directory to write the project to; it must not exist or be empty [default: ./NAME]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A checkout of wasm-operator (or its sdk-rust/ or sdk-go/ directory) whose SDK the project
    /// builds against; the SDKs are not published [default: the checkout the current directory,
    /// else the wasm-operator binary, is in]
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

pub fn main(args: Args) -> ExitCode {
    match create(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("wasm-operator new: {error}");
            ExitCode::FAILURE
        }
    }
}

fn create(args: &Args) -> Result<(), String> {
    let names = names::Names::new(&args.name, args.kind.as_deref(), args.lang)?;
    let checkout = sdk::locate(args.sdk.as_deref())?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let written = project::write(args.lang, &names, &dir, &checkout)?;
    println!(
        "Created the {} operator {} for {} ({}) in {}, with the SDK of {}:",
        match args.lang {
            Lang::Rust => "Rust",
            Lang::Go => "Go",
        },
        names.name,
        names.kind,
        names.api_version(),
        dir.display(),
        checkout.root.display()
    );
    for path in written {
        println!("  {}", path.display());
    }
    println!(
        "Next: cd {} && make test && make build; README.md says how to run and deploy it.",
        dir.display()
    );
    Ok(())
}
