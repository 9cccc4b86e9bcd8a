//! What the suite can run: the operators scenarios may name, the implementations of each, and the
//! build rule that turns an implementation's source into a `.wasm` module.
//!
//! Adding a language is adding a [`Source`] variant with its build rule in [`Source::build`] and
//! one entry per operator in [`SUBJECTS`]; nothing else in the runner knows about languages.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use std::collections::HashMap;
use wasm_operator_test_support::{
    go_build, go_guest_module, guest_module, tinygo_guest_module, workspace_root, GoCompiler,
};

/// Where an implementation's module comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A workspace crate built for wasm32-wasip1 (`cargo build --release`).
    Cargo(&'static str),
    /// A Go package directory built with `GOOS=wasip1 go build -buildmode=c-shared`.
    Go(&'static str),
    /// The same Go package directory built with `tinygo build -target=wasip1 -buildmode=c-shared`.
    TinyGo(&'static str),
    /// A Go package directory built with some of its files replaced (`go build -overlay`): the
    /// deliberately broken variants that prove the suite notices a difference.
    GoOverlay {
        dir: &'static str,
        /// (file in `dir`, replacement relative to the workspace root).
        replace: &'static [(&'static str, &'static str)],
    },
}

/// One implementation of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Implementation {
    /// `rust`, `go`, ...: shown in reports and used in operator names.
    pub language: &'static str,
    pub source: Source,
}

/// An operator scenarios can name.
#[derive(Debug, Clone, Copy)]
pub struct Subject {
    /// The name scenarios use (`operator: webapp`).
    pub operator: &'static str,
    /// The kind it reconciles (`apiVersion`, `kind`): objects of it left in a run's namespaces
    /// are removed after the run, with the operator still running (finalizers).
    pub reconciles: (&'static str, &'static str),
    /// Every implementation; the first is the reference the others are compared with.
    pub implementations: &'static [Implementation],
}

const fn rust(package: &'static str) -> Implementation {
    Implementation {
        language: "rust",
        source: Source::Cargo(package),
    }
}

const fn go(dir: &'static str) -> Implementation {
    Implementation {
        language: "go",
        source: Source::Go(dir),
    }
}

const fn tinygo(dir: &'static str) -> Implementation {
    Implementation {
        language: "tinygo",
        source: Source::TinyGo(dir),
    }
}

const DEMO: &str = "demo.wasm-operator.dev/v1alpha1";

/// The operators of the suite.
pub const SUBJECTS: &[Subject] = &[
    Subject {
        operator: "webapp",
        reconciles: (DEMO, "WebApp"),
        implementations: &[
            rust("operator-webapp"),
            go("operators-go/webapp"),
            tinygo("operators-go/webapp"),
        ],
    },
    Subject {
        operator: "metrics-scaler",
        reconciles: (DEMO, "MetricScaler"),
        implementations: &[
            rust("operator-metrics-scaler"),
            go("operators-go/metrics-scaler"),
            tinygo("operators-go/metrics-scaler"),
        ],
    },
    Subject {
        operator: "ring",
        reconciles: (DEMO, "TestResource"),
        implementations: &[
            rust("operator-ring"),
            go("operators-go/ring"),
            tinygo("operators-go/ring"),
        ],
    },
    Subject {
        operator: "counter",
        reconciles: (DEMO, "Counter"),
        implementations: &[
            rust("operator-counter"),
            go("operators-go/counter"),
            tinygo("operators-go/counter"),
        ],
    },
    Subject {
        operator: "abi",
        reconciles: ("v1", "ConfigMap"),
        implementations: &[
            rust("conformance-guest-abi"),
            go("conformance/guests/go-abi"),
            tinygo("conformance/guests/go-abi"),
        ],
    },
];

/// The webapp example in Go with its status type replaced by one that forgets `readyReplicas`:
/// the suite must report it as different from the Rust webapp.
pub const BROKEN_GO_WEBAPP: Implementation = Implementation {
    language: "go",
    source: Source::GoOverlay {
        dir: "operators-go/webapp",
        replace: &[("types.go", "conformance/broken/go-webapp-nostatus/types.go")],
    },
};

/// The subject named `operator`.
pub fn subject(operator: &str) -> anyhow::Result<&'static Subject> {
    SUBJECTS
        .iter()
        .find(|subject| subject.operator == operator)
        .ok_or_else(|| {
            let known: Vec<_> = SUBJECTS.iter().map(|s| s.operator).collect();
            anyhow::anyhow!(
                "no operator {operator:?} in the suite; known: {} (add it to SUBJECTS in conformance/src/subjects.rs)",
                known.join(", ")
            )
        })
}

impl Source {
    /// Builds the module (once per process) and returns its bytes.
    pub fn build(self) -> Arc<[u8]> {
        let path = match self {
            Source::Cargo(package) => guest_module(package),
            Source::Go(dir) => go_guest_module(dir),
            Source::TinyGo(dir) => tinygo_guest_module(dir),
            Source::GoOverlay { dir, replace } => go_overlay_module(dir, replace),
        };
        Arc::from(
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
        )
    }
}

/// Like [`go_guest_module`], with `replace` applied through `go build -overlay`.
fn go_overlay_module(dir: &str, replace: &[(&str, &str)]) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = format!("{dir}{replace:?}");
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let root = workspace_root();
    let stem = format!("{}-overlay-{}", dir.replace('/', "-"), built.len());
    let overlay: serde_json::Map<String, serde_json::Value> = replace
        .iter()
        .map(|(file, replacement)| {
            (
                root.join(dir).join(file).display().to_string(),
                root.join(replacement).display().to_string().into(),
            )
        })
        .collect();
    let overlay_path =
        std::env::temp_dir().join(format!("wasm-operator-{stem}-{}.json", std::process::id()));
    std::fs::write(
        &overlay_path,
        serde_json::json!({ "Replace": overlay }).to_string(),
    )
    .expect("writing the overlay file");
    let path = go_build(
        GoCompiler::Gc,
        dir,
        &stem,
        &[format!("-overlay={}", overlay_path.display())],
    );
    let _ = std::fs::remove_file(&overlay_path);
    built.insert(key, path.clone());
    path
}
