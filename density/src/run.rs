//! A whole run: a control plane of its own with the TestResource CRD, the ring modules built and
//! compiled once (so no startup includes a compilation), then for each N in turn every setup
//! measured alone on the same rings.

use std::path::PathBuf;

use operators_tests::Lang;
use wasm_operator_soak::host::{Host, HostSettings};
use wasm_operator_soak::rings::Rings;
use wasm_operator_test_support::{apply_crd, private_control_plane};

use crate::measure::{measure, Measurement};
use crate::setup::{Binaries, Context, Setup};
use crate::Profile;

/// A setup at one N: its figures, or why there are none.
pub struct Outcome {
    pub setup: Setup,
    pub n: usize,
    pub result: Result<Measurement, String>,
}

/// Measures every setup of `setups` at every N of the profile, calling `done` after each.
pub async fn run(
    profile: &Profile,
    binaries: &Binaries,
    setups: &[Setup],
    mut done: impl FnMut(&Outcome),
) -> anyhow::Result<Vec<Outcome>> {
    let control_plane = tokio::task::spawn_blocking(private_control_plane).await??;
    let client = control_plane.client().await;
    apply_crd(&client, include_str!("../../crds/testresource.yaml")).await?;
    let mut langs: Vec<Lang> = Vec::new();
    for setup in setups {
        if let Setup::Host { lang, .. } = setup {
            if !langs.contains(lang) {
                langs.push(*lang);
            }
        }
    }
    for lang in &langs {
        let lang = *lang;
        tokio::task::spawn_blocking(move || lang.module_path("ring")).await?;
    }
    let mut work = tempfile::Builder::new()
        .prefix("wasm-operator-density-")
        .tempdir()?;
    let module_cache = work.path().join("modules");
    let context = Context {
        binaries,
        kubeconfig: control_plane.kubeconfig_path(),
        module_cache: &module_cache,
        swap_after: profile.swap_after,
    };
    warm_module_cache(&context, &client, &langs, work.path().join("warm-up")).await?;

    let mut outcomes = Vec::new();
    let mut kept = false;
    for &n in &profile.counts {
        let rings = Rings::create(&client, n, 1, &[Lang::Rust]).await?;
        for &setup in setups {
            let dir = work.path().join(format!("{}-{n}", setup.key()));
            let result = measure(setup, &rings, &client, &context, profile, &dir)
                .await
                .map_err(|error| format!("{error:#}"));
            if result.is_err() && !kept {
                // Its logs are what explains the failure.
                work.disable_cleanup(true);
                kept = true;
                eprintln!(
                    "logs of failed measurements kept in {}",
                    work.path().display()
                );
            }
            let outcome = Outcome { setup, n, result };
            done(&outcome);
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// Starts a host with one ring operator per language until they are loaded, so that the
/// module cache holds their compiled code before any startup is timed.
async fn warm_module_cache(
    context: &Context<'_>,
    client: &kube::Client,
    langs: &[Lang],
    dir: PathBuf,
) -> anyhow::Result<()> {
    if langs.is_empty() {
        return Ok(());
    }
    let rings = Rings::create(client, 1, 1, &[Lang::Rust]).await?;
    let ring = &rings.rings[0];
    let settings = HostSettings {
        binary: context.binaries.host.clone(),
        kubeconfig: context.kubeconfig.to_owned(),
        cache_dir: context.module_cache.to_owned(),
        state_dir: dir.join("state"),
        swap_after: "never".into(),
        memory_budget: None,
        operators: langs
            .iter()
            .map(|lang| wasm_operator_soak::host::OperatorEntry {
                name: format!("warm-up-{lang}"),
                module: lang.module_path("ring"),
                config: serde_json::json!({"inNamespace": ring.input, "outNamespace": ring.output}),
                allow_http: Vec::new(),
                memory_limit: None,
                swap_after: None,
            })
            .collect(),
    };
    std::fs::create_dir_all(&dir)?;
    let host = tokio::task::spawn_blocking(move || Host::start(settings, &dir)).await??;
    host.wait_until_loaded().await?;
    tokio::task::spawn_blocking(move || host.stop()).await??;
    Ok(())
}
