//! `ring-kube-rs`: the ring example operator (docs/examples.md, "ring") as a native kube-rs
//! operator, the baseline of the density benchmark (density/): one process per ring instance,
//! reading TestResources in one namespace and carrying their nonce to the same name in the next.
//!
//!     ring-kube-rs --in-namespace ring-0 --out-namespace ring-1 [--kubeconfig FILE]
//!
//! Each flag falls back to an environment variable (RING_IN_NAMESPACE, RING_OUT_NAMESPACE,
//! KUBECONFIG); without a kubeconfig the usual inference applies (in-cluster, ~/.kube/config).

mod reconcile;
mod types;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{watcher, Controller};
use kube::{Api, Client, Config};

use crate::reconcile::{error_policy, reconcile, Context};
use crate::types::TestResource;

#[derive(Parser)]
#[command(about = "The ring example operator, natively with kube-rs: one ring instance")]
struct Args {
    /// The namespace whose TestResources are read.
    #[arg(long, env = "RING_IN_NAMESPACE")]
    in_namespace: String,
    /// The namespace their nonces are carried to.
    #[arg(long, env = "RING_OUT_NAMESPACE")]
    out_namespace: String,
    /// Kubeconfig file [default: inferred: in-cluster or ~/.kube/config].
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?
        }
        None => Config::infer()
            .await
            .context("inferring the cluster configuration")?,
    };
    let client = Client::try_from(config).context("creating the client")?;
    let context = Arc::new(Context {
        client: client.clone(),
        out_namespace: args.out_namespace,
    });
    let inputs: Api<TestResource> = Api::namespaced(client, &args.in_namespace);
    Controller::new(inputs, watcher::Config::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
    Ok(())
}
