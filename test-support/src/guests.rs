//! Building Wasm guest crates of this workspace from source for tests.
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The root of the repository (the Cargo workspace) this test runs from.
///
/// Found at run time from the directory cargo runs the test in (`CARGO_MANIFEST_DIR`, else the
/// working directory), not baked in at compile time: the target directory is shared between
/// checkouts (see scripts/lib.sh), so a compiled-in path could point at another checkout.
pub fn workspace_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("the working directory is readable"));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.contains("[workspace]"))
        })
        .unwrap_or_else(|| panic!("no Cargo workspace above {}", start.display()))
        .to_path_buf()
}

/// Builds workspace package `package` for `wasm32-wasip1` in release mode (once per process) and
/// returns the path of its `.wasm` file.
///
/// Guests get a target directory of their own (`<target>/wasm-guests`): the outer `cargo test`
/// may still hold the lock on the main one.
pub fn guest_module(package: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(package) {
        return path.clone();
    }
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            package,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build guest {package}: {e}"));
    assert!(
        status.success(),
        "building guest {package} failed ({status}); is the target installed? `rustup target add wasm32-wasip1`"
    );
    let file = format!("{}.wasm", package.replace('-', "_"));
    let path = target_dir.join("wasm32-wasip1").join("release").join(file);
    assert!(
        path.exists(),
        "cargo built {package} but {} does not exist: is it a cdylib?",
        path.display()
    );
    built.insert(package.to_string(), path.clone());
    path
}

/// Builds the Go reactor module in `dir` (relative to the workspace root, e.g.
/// `operators-go/webapp`) with standard Go (`GOOS=wasip1 GOARCH=wasm -buildmode=c-shared`), once
/// per process, and returns the path of the `.wasm` file.
pub fn go_guest_module(dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(dir) {
        return path.clone();
    }
    let root = workspace_root();
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("go-guests");
    std::fs::create_dir_all(&out_dir).expect("creating the Go guest output directory");
    let path = out_dir.join(format!(
        "{}.wasm",
        dir.trim_end_matches('/').replace('/', "-")
    ));
    let status = Command::new("go")
        .current_dir(root.join(dir))
        .args(["build", "-buildmode=c-shared", "-trimpath", "-o"])
        .arg(&path)
        .arg(".")
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .status()
        .unwrap_or_else(|e| panic!("could not run go to build {dir}: {e}"));
    assert!(
        status.success(),
        "building Go guest {dir} failed ({status}); Go >= 1.24 is needed"
    );
    built.insert(dir.to_string(), path.clone());
    path
}
