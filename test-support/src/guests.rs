//! Building Wasm guests of this workspace from source for tests: Rust crates with cargo, Go
//! packages with the standard toolchain or TinyGo, C operators with Zig's clang.
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

/// An HTTP allowlist entry that grants the `http` capability without allowing any real address
/// (`.invalid` never resolves, RFC 2606): the host test guests import `http_request`, and a
/// module is loaded only for an operator granted what it imports.
pub const GRANTS_HTTP_ONLY: &str = "http://granted.invalid/";

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
    let target_dir = target_dir().join("wasm-guests");
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

/// The compilers Go operators are built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoCompiler {
    /// The standard toolchain: `GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`.
    Gc,
    /// TinyGo: `tinygo build -target=wasip1 -buildmode=c-shared -no-debug`. The command is
    /// `$WASM_OPERATOR_TINYGO` (scripts/tinygo.sh installs it and prints its path; `make test`
    /// sets the variable), else `tinygo` on PATH.
    TinyGo,
}

impl GoCompiler {
    /// The directory under the target directory its modules go to.
    fn output_dir(self) -> &'static str {
        match self {
            GoCompiler::Gc => "go-guests",
            GoCompiler::TinyGo => "tinygo-guests",
        }
    }

    /// The compiler's command.
    fn program(self) -> std::ffi::OsString {
        match self {
            GoCompiler::Gc => "go".into(),
            GoCompiler::TinyGo => {
                std::env::var_os("WASM_OPERATOR_TINYGO").unwrap_or_else(|| "tinygo".into())
            }
        }
    }

    /// The build command, without output path and package.
    fn command(self) -> Command {
        let mut command = Command::new(self.program());
        match self {
            GoCompiler::Gc => {
                command
                    .args(["build", "-buildmode=c-shared", "-trimpath"])
                    .env("GOOS", "wasip1")
                    .env("GOARCH", "wasm");
            }
            GoCompiler::TinyGo => {
                command.args([
                    "build",
                    "-target=wasip1",
                    "-buildmode=c-shared",
                    "-no-debug",
                ]);
            }
        }
        command
    }

    /// What to tell someone whose build failed or could not start.
    fn hint(self) -> &'static str {
        match self {
            GoCompiler::Gc => "Go >= 1.24 is needed",
            GoCompiler::TinyGo => {
                "TinyGo is needed: `scripts/tinygo.sh install` installs it and prints its path; \
                 set WASM_OPERATOR_TINYGO to that path (`make test` does both)"
            }
        }
    }
}

/// Builds the Go reactor module in `dir` (relative to the workspace root, e.g.
/// `operators-go/webapp`) with standard Go, once per process, and returns the path of the `.wasm`
/// file.
pub fn go_guest_module(dir: &str) -> PathBuf {
    go_module(GoCompiler::Gc, dir)
}

/// Like [`go_guest_module`], built with TinyGo.
pub fn tinygo_guest_module(dir: &str) -> PathBuf {
    go_module(GoCompiler::TinyGo, dir)
}

/// Builds the Go reactor module in `dir` with `compiler` (once per process and compiler) and
/// returns the path of the `.wasm` file.
pub fn go_module(compiler: GoCompiler, dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(GoCompiler, String), PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (compiler, dir.to_string());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let stem = dir.trim_end_matches('/').replace('/', "-");
    let path = match compiler {
        // The go command caches builds itself.
        GoCompiler::Gc => go_build(compiler, dir, &stem, &[]),
        // TinyGo optimises the whole program on every build (about 30-60 s on 2 cores), and
        // every test binary is a process of its own: keep its output by content.
        GoCompiler::TinyGo => {
            let stem = format!("{stem}-{}", tinygo_inputs_digest(dir));
            let path = target_dir()
                .join(compiler.output_dir())
                .join(format!("{stem}.wasm"));
            if path.exists() {
                path
            } else {
                let built = go_build(compiler, dir, &format!("{stem}.tmp"), &[]);
                std::fs::rename(&built, &path).expect("moving the TinyGo module into place");
                path
            }
        }
    };
    built.insert(key, path.clone());
    path
}

/// A digest of everything a TinyGo build of `dir` reads that can change here: the TinyGo version,
/// and every file of every non-standard package the build depends on (as the go command lists
/// them for wasip1, with each file's name and contents, build-tagged ones included) and their
/// modules' go.mod files.
fn tinygo_inputs_digest(dir: &str) -> String {
    use sha2::{Digest, Sha256};
    let run = |command: &mut Command| -> String {
        let output = command.output().unwrap_or_else(|e| {
            panic!(
                "could not run {command:?}: {e}; {}",
                GoCompiler::TinyGo.hint()
            )
        });
        assert!(
            output.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut hasher = Sha256::new();
    hasher.update(run(
        Command::new(GoCompiler::TinyGo.program()).arg("version")
    ));
    let listing = run(Command::new("go")
        .current_dir(workspace_root().join(dir))
        .args([
            "list",
            "-deps",
            "-f",
            "{{if not .Standard}}{{.Dir}}\n{{with .Module}}{{.GoMod}}\n{{end}}{{end}}",
            ".",
        ])
        .env("GOOS", "wasip1")
        .env("GOARCH", "wasm"));
    let mut files = Vec::new();
    for line in listing.lines().filter(|line| !line.is_empty()) {
        let path = PathBuf::from(line);
        if path.is_dir() {
            let entries = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            files.extend(
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|file| file.is_file()),
            );
        } else {
            files.push(path);
        }
    }
    files.sort();
    files.dedup();
    let root = workspace_root();
    for file in files {
        // Relative to the checkout, so that every clone of the same sources shares the build.
        hasher.update(
            file.strip_prefix(&root)
                .unwrap_or(&file)
                .display()
                .to_string(),
        );
        hasher.update(
            std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display())),
        );
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Runs `compiler` on the package in `dir` with `extra_args`, writing
/// `<target>/<compiler's directory>/<stem>.wasm`, and returns that path. Not cached.
pub fn go_build(compiler: GoCompiler, dir: &str, stem: &str, extra_args: &[String]) -> PathBuf {
    let out_dir = target_dir().join(compiler.output_dir());
    std::fs::create_dir_all(&out_dir).expect("creating the Go guest output directory");
    let path = out_dir.join(format!("{stem}.wasm"));
    let status = compiler
        .command()
        .current_dir(workspace_root().join(dir))
        .args(extra_args)
        .arg("-o")
        .arg(&path)
        .arg(".")
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "could not start {compiler:?} to build {dir}: {e}; {}",
                compiler.hint()
            )
        });
    assert!(
        status.success(),
        "building Go guest {dir} with {compiler:?} failed ({status}); {}",
        compiler.hint()
    );
    path
}

/// How to get the C compiler [`c_guest_module`] uses.
const C_COMPILER_HINT: &str = "the C operators are built with Zig's clang: `scripts/zig.sh install` \
     installs it and prints its path; set WASM_OPERATOR_ZIG_CC to that path (`make test` does both)";

/// Builds the C operator in `dir` (relative to the workspace root, e.g.
/// `operators-c/configmap-summary`) with its Makefile and the C compiler
/// `$WASM_OPERATOR_ZIG_CC` (a `zig cc`, see scripts/zig.sh), once per process, and returns the
/// path of the `.wasm` file.
///
/// The output is kept by content (the compiler's version and every file in `dir`), like TinyGo's,
/// and written under a temporary name first: test binaries run as separate processes and may
/// build the same module at the same time.
pub fn c_guest_module(dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(dir) {
        return path.clone();
    }
    let compiler = std::env::var_os("WASM_OPERATOR_ZIG_CC")
        .unwrap_or_else(|| panic!("WASM_OPERATOR_ZIG_CC is not set: {C_COMPILER_HINT}"));
    let version = Command::new(&compiler)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("could not run {compiler:?}: {e}; {C_COMPILER_HINT}"));
    assert!(
        version.status.success(),
        "{compiler:?} --version failed: {}; {C_COMPILER_HINT}",
        String::from_utf8_lossy(&version.stderr)
    );

    use sha2::{Digest, Sha256};
    let source_dir = workspace_root().join(dir);
    let mut hasher = Sha256::new();
    hasher.update(&version.stdout);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&source_dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", source_dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        // Sources and the Makefile; not what a manual `make` left there.
        .filter(|file| {
            file.is_file()
                && (file.file_name().is_some_and(|name| name == "Makefile")
                    || file.extension().is_some_and(|ext| ext == "c" || ext == "h"))
        })
        .collect();
    files.sort();
    for file in &files {
        hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(
            std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display())),
        );
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();

    let out_dir = target_dir().join("c-guests");
    std::fs::create_dir_all(&out_dir).expect("creating the C guest output directory");
    let stem = dir.trim_end_matches('/').replace('/', "-");
    let path = out_dir.join(format!("{stem}-{digest}.wasm"));
    if !path.exists() {
        let partial = out_dir.join(format!("{stem}-{digest}.{}.tmp", std::process::id()));
        let mut cc = std::ffi::OsString::from("CC=");
        cc.push(&compiler);
        let mut out = std::ffi::OsString::from("OUT=");
        out.push(&partial);
        let status = Command::new("make")
            .arg("--no-print-directory")
            .arg("-C")
            .arg(&source_dir)
            .arg(cc)
            .arg(out)
            .status()
            .unwrap_or_else(|e| panic!("could not run make to build {dir}: {e}"));
        assert!(
            status.success(),
            "building C guest {dir} failed ({status}); {C_COMPILER_HINT}"
        );
        std::fs::rename(&partial, &path).expect("moving the C module into place");
    }
    built.insert(dir.to_string(), path.clone());
    path
}

/// The cargo target directory tests build into: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
