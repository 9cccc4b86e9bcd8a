//! Where the SDK a new project builds against is. Neither SDK is published (to crates.io or a Go
//! module proxy), so a project points at a checkout of this repository: the Rust crate by path,
//! the Go module with a `replace`.
//!
//! `--sdk` names the checkout (or its `sdk-rust/` or `sdk-go/` directory). Without it, the
//! checkout is looked for above the current directory, then above the `wasm-operator` binary
//! (`target/debug/wasm-operator` in a checkout). A path compiled into the binary is not used: the
//! target directory may be shared between checkouts, and an installed binary outlives the
//! checkout it was built in, so such a path could silently point at the wrong SDK.
use std::path::{Component, Path, PathBuf};

/// A checkout of the repository holding both SDKs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// Absolute, without symbolic links.
    pub root: PathBuf,
}

impl Checkout {
    pub fn sdk_rust(&self) -> PathBuf {
        self.root.join("sdk-rust")
    }

    pub fn sdk_go(&self) -> PathBuf {
        self.root.join("sdk-go")
    }

    /// The checkout's Cargo.lock: the dependency versions the SDK is tested with.
    pub fn cargo_lock(&self) -> Option<PathBuf> {
        Some(self.root.join("Cargo.lock")).filter(|path| path.is_file())
    }
}

/// Whether `dir` is a checkout: both SDKs are there, under their published names.
fn is_checkout(dir: &Path) -> bool {
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    read("sdk-rust/Cargo.toml").contains("name = \"wasm-operator-sdk\"")
        && read("sdk-go/go.mod").contains("module wasm-operator.dev/sdk-go")
}

/// The checkout `--sdk` names, or the one found from the working directory or the binary.
pub fn locate(sdk: Option<&Path>) -> Result<Checkout, String> {
    if let Some(path) = sdk {
        let canonical = path
            .canonicalize()
            .map_err(|e| format!("--sdk {}: {e}", path.display()))?;
        // The checkout itself, or one of its SDK directories.
        let candidates = [Some(canonical.as_path()), canonical.parent()];
        return candidates
            .into_iter()
            .flatten()
            .find(|dir| is_checkout(dir))
            .map(|root| Checkout {
                root: root.to_owned(),
            })
            .ok_or_else(|| {
                format!(
                    "--sdk {}: not a checkout of wasm-operator (expected sdk-rust/Cargo.toml and \
                     sdk-go/go.mod in it, or to be its sdk-rust/ or sdk-go/ directory)",
                    path.display()
                )
            });
    }
    let starts = [std::env::current_dir().ok(), std::env::current_exe().ok()];
    starts
        .into_iter()
        .flatten()
        .filter_map(|start| start.canonicalize().ok())
        .find_map(|start| {
            start
                .ancestors()
                .find(|dir| is_checkout(dir))
                .map(Path::to_owned)
        })
        .map(|root| Checkout { root })
        .ok_or_else(|| {
            "cannot tell where the wasm-operator SDK is: neither the current directory nor the \
             wasm-operator binary is inside a checkout of wasm-operator. The SDKs are not \
             published, so pass --sdk PATH with the path of a checkout \
             (e.g. --sdk ~/src/wasm-operator)"
                .to_owned()
        })
}

/// How `project` (absolute) refers to `target` (absolute) in its build files: relative when the
/// project is inside the same checkout, so the checkout can move; absolute otherwise, so the
/// project can move.
pub fn reference(project: &Path, target: &Path, checkout: &Checkout) -> String {
    if project.starts_with(&checkout.root) {
        relative(project, target).display().to_string()
    } else {
        target.display().to_string()
    }
}

/// `target` relative to `from`, both absolute and normalised.
fn relative(from: &Path, target: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for component in &to[common..] {
        path.push(component);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_checkout() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sdk-rust")).unwrap();
        std::fs::create_dir_all(dir.path().join("sdk-go")).unwrap();
        std::fs::write(
            dir.path().join("sdk-rust/Cargo.toml"),
            "[package]\nname = \"wasm-operator-sdk\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sdk-go/go.mod"),
            "module wasm-operator.dev/sdk-go\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn sdk_names_the_checkout_or_one_of_its_sdks() {
        let dir = fake_checkout();
        let root = dir.path().canonicalize().unwrap();
        for given in [root.clone(), root.join("sdk-rust"), root.join("sdk-go")] {
            assert_eq!(locate(Some(&given)).unwrap().root, root);
        }
        let error = locate(Some(&root.join("sdk-rust/.."))).map(|c| c.root);
        assert_eq!(error, Ok(root.clone()));
        let elsewhere = tempfile::tempdir().unwrap();
        let error = locate(Some(elsewhere.path())).unwrap_err();
        assert!(error.contains("not a checkout of wasm-operator"), "{error}");
        let error = locate(Some(&root.join("missing"))).unwrap_err();
        assert!(error.contains("missing"), "{error}");
    }

    #[test]
    fn paths_are_relative_inside_the_checkout_and_absolute_outside() {
        let checkout = Checkout {
            root: PathBuf::from("/src/wasm-operator"),
        };
        let sdk = checkout.sdk_go();
        assert_eq!(
            reference(
                Path::new("/src/wasm-operator/operators-go/mine"),
                &sdk,
                &checkout
            ),
            "../../sdk-go"
        );
        assert_eq!(
            reference(Path::new("/home/me/mine"), &sdk, &checkout),
            "/src/wasm-operator/sdk-go"
        );
    }
}
