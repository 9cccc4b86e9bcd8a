//! Which implementations of an example a test runs: Rust always; Go, built with the standard
//! toolchain and with TinyGo, when `operators-go/<x>/` exists in the checkout. All must pass the
//! same test.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use wasm_operator_test_support::{
    go_guest_module, guest_module, tinygo_guest_module, workspace_root,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Go,
    TinyGo,
}

impl Lang {
    /// The implementations of `example` (`webapp`, `metrics-scaler`, `ring`, `counter`) present.
    pub fn available(example: &str) -> Vec<Lang> {
        let mut langs = vec![Lang::Rust];
        if workspace_root().join("operators-go").join(example).is_dir() {
            langs.extend([Lang::Go, Lang::TinyGo]);
        }
        langs
    }

    /// The `.wasm` bytes of `example` in this language, built from source once per process.
    pub fn module(self, example: &str) -> Arc<[u8]> {
        let path = self.module_path(example);
        Arc::from(
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())),
        )
    }

    /// Where the `.wasm` file of `example` in this language is, built from source once per
    /// process.
    pub fn module_path(self, example: &str) -> PathBuf {
        match self {
            Lang::Rust => guest_module(&format!("operator-{example}")),
            Lang::Go => go_guest_module(&format!("operators-go/{example}")),
            Lang::TinyGo => tinygo_guest_module(&format!("operators-go/{example}")),
        }
    }

    /// Lower-case, for operator names and namespace prefixes.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Go => "go",
            Lang::TinyGo => "tinygo",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
