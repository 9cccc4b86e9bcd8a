//! Loading modules: validation errors reach the user, the precompiled cache serves repeat loads,
//! and a damaged cache file is replaced by a fresh compile instead of being trusted.

mod runtime_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use wasm_operator::runtime::{LoadError, LoadSource, Runtime, RuntimeConfig};

use runtime_support::*;

fn cache_files(runtime: &TestRuntime, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(runtime.cache_dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(extension))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn second_load_is_served_from_the_cache_and_runs() {
    let test = test_runtime();
    let wasm = behaviours_wasm();

    let first = test.runtime.load(&wasm).await.unwrap();
    assert_eq!(first.load_source(), LoadSource::Compiled);
    let artifacts = cache_files(&test, ".cwasm");
    assert_eq!(
        artifacts.len(),
        1,
        "one precompiled artifact: {artifacts:?}"
    );
    let name = artifacts[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(first.digest().trim_start_matches("sha256:")),
        "keyed by module digest: {name}"
    );

    // While the first is loaded, the same bytes get the same module, not another copy.
    let shared = test.runtime.load(&wasm).await.unwrap();
    assert_eq!(shared.load_source(), LoadSource::AlreadyLoaded);
    assert!(shared.shares_code_with(&first));
    let (digest, compile_time) = (first.digest().to_owned(), first.load_time());
    drop((first, shared));

    let second = test.runtime.load(&wasm).await.unwrap();
    assert_eq!(second.load_source(), LoadSource::Cache);
    assert_eq!(second.digest(), digest);

    // A new runtime (as after a host restart) with the same cache directory also hits.
    let restarted = Runtime::new(RuntimeConfig {
        cache_dir: test.cache_dir.path().to_path_buf(),
        epoch_tick: EPOCH_TICK,
    })
    .unwrap();
    let third = restarted.load(&wasm).await.unwrap();
    assert_eq!(third.load_source(), LoadSource::Cache);

    let started = Instant::now();
    let mut instance = third
        .instantiate("cached", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    let instantiate_time = started.elapsed();
    instance
        .init(&init_input("cached", json!({})))
        .await
        .unwrap();
    instance.reconcile(&reconcile_request("web")).await.unwrap();
    eprintln!(
        "behaviours guest ({} bytes): compile {:?}, cache load {:?}, instantiate {:?}",
        wasm.len(),
        compile_time,
        third.load_time(),
        instantiate_time
    );
}

#[tokio::test]
async fn corrupt_cache_file_falls_back_to_compiling() {
    let test = test_runtime();
    let wasm = behaviours_wasm();
    test.runtime.load(&wasm).await.unwrap();
    let artifact = cache_files(&test, ".cwasm").remove(0);

    // Flip bytes in the middle of the code, where wasmtime's own header checks would not look.
    let mut bytes = fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 64] {
        *byte ^= 0xa5;
    }
    fs::write(&artifact, &bytes).unwrap();

    let reloaded = test.runtime.load(&wasm).await.unwrap();
    assert_eq!(
        reloaded.load_source(),
        LoadSource::Compiled,
        "a damaged artifact must not be used"
    );
    let mut instance = reloaded
        .instantiate("recovered", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("recovered", json!({})))
        .await
        .unwrap();
    instance.reconcile(&reconcile_request("web")).await.unwrap();
    drop((instance, reloaded)); // so the next load cannot share this one

    assert_eq!(
        test.runtime.load(&wasm).await.unwrap().load_source(),
        LoadSource::Cache,
        "the artifact was rewritten"
    );
}

#[tokio::test]
async fn truncated_cache_file_falls_back_to_compiling() {
    let test = test_runtime();
    let wasm = behaviours_wasm();
    test.runtime.load(&wasm).await.unwrap();
    let artifact = cache_files(&test, ".cwasm").remove(0);
    fs::write(&artifact, b"\x7fELF truncated").unwrap();

    assert_eq!(
        test.runtime.load(&wasm).await.unwrap().load_source(),
        LoadSource::Compiled
    );
}

#[tokio::test]
async fn a_cache_directory_others_may_write_is_never_loaded_from() {
    // Someone plants a valid-looking artifact (with its checksum) in a world-writable directory,
    // e.g. under /tmp: the host must not execute it. The cache is disabled with a warning,
    // modules are compiled in memory, nothing is written there, and the host keeps working.
    let wasm = behaviours_wasm();
    let trusted = test_runtime();
    trusted.runtime.load(&wasm).await.unwrap();
    let shared = tempfile::tempdir().unwrap();
    for file in fs::read_dir(trusted.cache_dir.path()).unwrap() {
        let path = file.unwrap().path();
        fs::copy(&path, shared.path().join(path.file_name().unwrap())).unwrap();
    }
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = fs::read_dir(shared.path()).unwrap().count();

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: shared.path().to_path_buf(),
        epoch_tick: EPOCH_TICK,
    })
    .expect("the host starts, without the cache");
    for _ in 0..2 {
        let loaded = runtime.load(&wasm).await.unwrap();
        assert_eq!(loaded.load_source(), LoadSource::Compiled);
        let mut instance = loaded
            .instantiate("uncached", limits(DEFAULT_DEADLINE), FakeServices::new())
            .await
            .unwrap();
        instance
            .init(&init_input("uncached", json!({})))
            .await
            .unwrap();
    }
    assert_eq!(fs::read_dir(shared.path()).unwrap().count(), planted);
    let mode = fs::metadata(shared.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o1777,
        "the host does not silently adopt the directory"
    );
}

#[tokio::test]
async fn an_artifact_truncated_to_a_page_boundary_is_recompiled_not_mapped() {
    // Truncation that keeps wasmtime's header intact (a page boundary inside the code): the
    // checksum read through the descriptor that is mapped catches it before any page is.
    let test = test_runtime();
    let wasm = behaviours_wasm();
    test.runtime.load(&wasm).await.unwrap();
    let artifact = cache_files(&test, ".cwasm").remove(0);
    let len = fs::metadata(&artifact).unwrap().len();
    let file = fs::OpenOptions::new().write(true).open(&artifact).unwrap();
    file.set_len((len / 2) & !4095).unwrap();
    drop(file);
    let reloaded = test.runtime.load(&wasm).await.unwrap();
    assert_eq!(reloaded.load_source(), LoadSource::Compiled);
    let mut instance = reloaded
        .instantiate("retruncated", limits(DEFAULT_DEADLINE), FakeServices::new())
        .await
        .unwrap();
    instance
        .init(&init_input("retruncated", json!({})))
        .await
        .unwrap();
    instance.reconcile(&reconcile_request("web")).await.unwrap();
    assert_eq!(
        fs::metadata(&artifact).unwrap().len(),
        len,
        "rewritten whole"
    );
}

#[tokio::test]
async fn missing_checksum_is_a_cache_miss() {
    let test = test_runtime();
    let wasm = behaviours_wasm();
    test.runtime.load(&wasm).await.unwrap();
    for checksum in cache_files(&test, ".sha256") {
        fs::remove_file(checksum).unwrap();
    }
    assert_eq!(
        test.runtime.load(&wasm).await.unwrap().load_source(),
        LoadSource::Compiled
    );
    assert_eq!(cache_files(&test, ".sha256").len(), 1);
}

#[tokio::test]
async fn no_temporary_files_are_left_behind() {
    let test = test_runtime();
    test.runtime.load(&behaviours_wasm()).await.unwrap();
    assert!(cache_files(&test, ".tmp").is_empty());
}

#[tokio::test]
async fn invalid_module_is_refused_with_the_validation_message() {
    let test = test_runtime();
    let command_module =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .unwrap();
    match test.runtime.load(&command_module).await {
        Err(LoadError::Invalid(message)) => {
            assert!(message.contains("_start"), "{message}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert!(
        cache_files(&test, ".cwasm").is_empty(),
        "nothing is compiled for an invalid module"
    );

    match test.runtime.load(b"not wasm at all").await {
        Err(error @ LoadError::Invalid(_)) => assert!(
            error.to_string().starts_with("invalid operator module: "),
            "{error}"
        ),
        other => panic!("expected a validation error, got {other:?}"),
    }
}
