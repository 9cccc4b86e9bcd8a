//! `wasm-operator new` end to end, once per language: the binary writes a project into a
//! temporary directory; the project's own unit tests pass (natively, warnings denied, formatted
//! as its toolchain formats); its module builds (Rust: wasm32-wasip1; Go: standard Go, and TinyGo
//! when `WASM_OPERATOR_TINYGO` is set) and validates; and the module, loaded into the host
//! against the real API server with the project's CRD applied, gives a new object its finalizer
//! and a Ready status for the current generation, follows a spec change, and releases the
//! object when it is deleted.
//!
//! Run time on 2 cores: the Rust project's dependencies are compiled once into
//! `<target>/new-projects` (about 2 minutes cold: 50 s of `cargo test`, 60 s of the release
//! build; about 10 s warm); the Go project takes about 10 s with a warm Go build cache, plus
//! about 20 s for the TinyGo build.
mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::{json, Value};
use wasm_operator_test_support::{
    apply_crd, control_plane, target_dir, test_namespace, wait_for, workspace_root,
};

use e2e_support::{spec, TestHost, PROMPTLY};

/// The binary under test.
const WASM_OPERATOR: &str = env!("CARGO_BIN_EXE_wasm-operator");

/// The kind a generated project reconciles, as the test expects `new` to have named it.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
}

impl Kind {
    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: format!("{}/{}", self.group, self.version),
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }

    fn finalizer(&self) -> String {
        format!("{}/cleanup", self.group)
    }
}

/// Runs `wasm-operator new ARGS` and returns the project's directory (under `parent`).
fn generate(parent: &Path, name: &str, args: &[&str]) -> PathBuf {
    let dir = parent.join(name);
    let output = Command::new(WASM_OPERATOR)
        .arg("new")
        .arg(name)
        .args(args)
        .arg("--dir")
        .arg(&dir)
        .arg("--sdk")
        .arg(workspace_root())
        .output()
        .expect("running wasm-operator new");
    assert!(
        output.status.success(),
        "wasm-operator new {name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

/// Runs `command` to completion, failing the test with its output if it fails; reports how long
/// it took (cold and warm build times show in the test's output).
fn run(what: &str, command: &mut Command) {
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{what}: {:.1?}", started.elapsed());
}

fn make(dir: &Path, target: &str) -> Command {
    let mut command = Command::new("make");
    command
        .arg("--no-print-directory")
        .arg(target)
        .current_dir(dir);
    command
}

/// Whether `program args` runs: an optional tool (rustfmt) is present.
fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Loads `module` as operator `name` into a host, and checks what the generated reconcile does to
/// an object of `kind`: finalizer, Ready status for the current generation, again after a spec
/// change, and the object released on deletion.
async fn reconciles_in_the_host(project: &Path, name: &str, module: Vec<u8>, kind: &Kind) {
    let client = control_plane().client().await;
    let crd = std::fs::read_to_string(project.join("crd.yaml")).unwrap();
    apply_crd(&client, &crd)
        .await
        .expect("applying the generated CRD");
    let host = TestHost::start().await;
    let mut operator = spec(name, Arc::from(module), json!({}));
    // Standard Go modules need more than the test default.
    operator.limits.max_memory_bytes = 128 << 20;
    host.manager
        .load(operator)
        .await
        .unwrap_or_else(|e| panic!("loading {name}: {e}"));

    let namespace = test_namespace(&client, name).await;
    let objects: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace.name, &kind.resource());
    let sample = std::fs::read_to_string(project.join("sample.yaml")).unwrap();
    let sample: DynamicObject =
        serde_saphyr::from_str(&sample).expect("the generated sample.yaml parses");
    let created = objects
        .create(&PostParams::default(), &sample)
        .await
        .expect("creating the sample object");
    let object_name = created.metadata.name.clone().unwrap();
    wait_until_reconciled(&objects, &object_name, kind, 1).await;

    objects
        .patch(
            &object_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"message": "changed"}})),
        )
        .await
        .expect("changing the spec");
    wait_until_reconciled(&objects, &object_name, kind, 2).await;

    objects
        .delete(&object_name, &DeleteParams::default())
        .await
        .expect("deleting the object");
    wait_for(
        &format!("{name} to release {object_name} (finalizer removed, object gone)"),
        PROMPTLY,
        || async { matches!(objects.get_opt(&object_name).await, Ok(None)).then_some(()) },
    )
    .await;
    host.manager.shutdown().await;
}

/// Waits until the object has the finalizer and a Ready status for `generation`; a timeout
/// shows the object as last seen.
async fn wait_until_reconciled(
    objects: &Api<DynamicObject>,
    name: &str,
    kind: &Kind,
    generation: i64,
) {
    let finalizer = kind.finalizer();
    let deadline = Instant::now() + PROMPTLY;
    loop {
        let object = objects.get(name).await.ok();
        let reconciled = object.as_ref().is_some_and(|object| {
            let status = object.data.get("status").unwrap_or(&Value::Null);
            let ready = status["conditions"]
                .as_array()
                .and_then(|conditions| conditions.iter().find(|c| c["type"] == "Ready"));
            object.metadata.generation == Some(generation)
                && status["observedGeneration"] == generation
                && ready.is_some_and(|ready| {
                    ready["status"] == "True" && ready["observedGeneration"] == generation
                })
                && object
                    .metadata
                    .finalizers
                    .as_ref()
                    .is_some_and(|finalizers| finalizers.contains(&finalizer))
        });
        if reconciled {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {PROMPTLY:?} waiting for {name} to have finalizer {finalizer} and \
             Ready=True for generation {generation}; last seen: {:#}",
            serde_json::to_value(&object).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rust_project_tests_builds_and_reconciles() {
    let parent = tempfile::tempdir().unwrap();
    // The default kind, derived from the name.
    let project = generate(parent.path(), "hello-rust", &["--lang", "rust"]);
    let kind = Kind {
        group: "hello-rust.example.com",
        version: "v1alpha1",
        kind: "HelloRust",
        plural: "hellorusts",
    };
    // The dependencies stay compiled across runs (the project's directory does not).
    let cargo_target = target_dir().join("new-projects");
    let cargo = |command: &mut Command| {
        command
            .env("CARGO_TARGET_DIR", &cargo_target)
            .env("RUSTFLAGS", "-D warnings")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
    };
    if available("cargo", &["fmt", "--version"]) {
        run(
            "cargo fmt --check of the generated project",
            Command::new("cargo")
                .args(["fmt", "--check"])
                .current_dir(&project),
        );
    }
    let mut test = make(&project, "test");
    cargo(&mut test);
    run("make test (cargo test) of the generated project", &mut test);
    let mut build = make(&project, "build");
    cargo(&mut build);
    run(
        "make build (wasm32-wasip1, release) of the generated project",
        &mut build,
    );

    let module = cargo_target.join("wasm32-wasip1/release/hello_rust.wasm");
    run(
        "wasm-operator validate",
        Command::new(WASM_OPERATOR).arg("validate").arg(&module),
    );
    reconciles_in_the_host(
        &project,
        "hello-rust",
        std::fs::read(&module).unwrap(),
        &kind,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_go_project_tests_builds_and_reconciles() {
    let parent = tempfile::tempdir().unwrap();
    // An explicit kind.
    let project = generate(
        parent.path(),
        "hello-go",
        &[
            "--lang",
            "go",
            "--kind",
            "greetings.example.com/v1/Greeting",
        ],
    );
    let kind = Kind {
        group: "greetings.example.com",
        version: "v1",
        kind: "Greeting",
        plural: "greetings",
    };
    let gofmt = Command::new("gofmt")
        .args(["-l", "."])
        .current_dir(&project)
        .output()
        .expect("running gofmt");
    assert_eq!(
        String::from_utf8_lossy(&gofmt.stdout),
        "",
        "gofmt would change these generated files"
    );
    run(
        "make test (go vet, go test) of the generated project",
        &mut make(&project, "test"),
    );
    run(
        "make build (standard Go) of the generated project",
        &mut make(&project, "build"),
    );
    let module = project.join("hello-go.wasm");
    run(
        "wasm-operator validate",
        Command::new(WASM_OPERATOR).arg("validate").arg(&module),
    );
    reconciles_in_the_host(&project, "hello-go", std::fs::read(&module).unwrap(), &kind).await;

    let Some(tinygo) = std::env::var_os("WASM_OPERATOR_TINYGO") else {
        eprintln!("WASM_OPERATOR_TINYGO is not set: the TinyGo build is not tested");
        return;
    };
    let mut build = make(&project, "build-tinygo");
    build.arg(format!("TINYGO={}", tinygo.to_string_lossy()));
    run("make build-tinygo of the generated project", &mut build);
    let module = project.join("hello-go-tinygo.wasm");
    run(
        "wasm-operator validate (TinyGo)",
        Command::new(WASM_OPERATOR).arg("validate").arg(&module),
    );
    reconciles_in_the_host(
        &project,
        "hello-go-tinygo",
        std::fs::read(&module).unwrap(),
        &kind,
    )
    .await;
}

/// What `new` refuses, with the reason, before writing anything.
#[test]
fn new_refuses_bad_names_kinds_and_non_empty_directories() {
    let parent = tempfile::tempdir().unwrap();
    let sdk = workspace_root();
    let refusal = |args: &[&str]| -> String {
        let output = Command::new(WASM_OPERATOR)
            .arg("new")
            .args(args)
            .arg("--sdk")
            .arg(&sdk)
            .current_dir(parent.path())
            .output()
            .expect("running wasm-operator new");
        assert!(!output.status.success(), "new {args:?} succeeded");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let error = refusal(&["--lang", "go", "Hello_World"]);
    assert!(
        error.contains("invalid operator name \"Hello_World\""),
        "{error}"
    );
    let error = refusal(&["--lang", "rust", "hello", "--kind", "v1/Hello"]);
    assert!(error.contains("invalid --kind \"v1/Hello\""), "{error}");
    std::fs::create_dir(parent.path().join("taken")).unwrap();
    std::fs::write(parent.path().join("taken/keep.txt"), "mine").unwrap();
    let error = refusal(&["--lang", "go", "taken"]);
    assert!(error.contains("is not empty"), "{error}");
    assert_eq!(
        std::fs::read_dir(parent.path().join("taken"))
            .unwrap()
            .count(),
        1,
        "nothing was written next to the existing file"
    );
    assert!(!parent.path().join("hello").exists() && !parent.path().join("Hello_World").exists());
}
