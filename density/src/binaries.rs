//! The programs a run starts, built here when not given: the host (soak's `host_binary`:
//! `WASM_OPERATOR_BIN` or a debug build), the native kube-rs ring (`DENSITY_RING_KUBE_RS` or a
//! debug build) and the native controller-runtime ring (`DENSITY_RING_CONTROLLER_RUNTIME` or
//! `go build`, cached by Go's build cache). `make bench-density` passes release builds of all three.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use wasm_operator_test_support::{target_dir, workspace_root};

use crate::setup::Binaries;

/// Every binary, each from its variable or built now.
pub fn binaries() -> anyhow::Result<Binaries> {
    Ok(Binaries {
        host: wasm_operator_soak::env::host_binary()?,
        kube_rs: kube_rs_binary()?,
        controller_runtime: controller_runtime_binary()?,
    })
}

pub fn kube_rs_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DENSITY_RING_KUBE_RS") {
        return Ok(PathBuf::from(path));
    }
    let status = wasm_operator_soak::env::cargo()
        .args(["build", "--locked", "-p", "density-ring-kube-rs"])
        .current_dir(workspace_root())
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "building ring-kube-rs failed ({status})");
    Ok(target_dir().join("debug").join("ring-kube-rs"))
}

pub fn controller_runtime_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DENSITY_RING_CONTROLLER_RUNTIME") {
        return Ok(PathBuf::from(path));
    }
    let output = target_dir().join("density").join("ring-controller-runtime");
    // As an operator's release image is usually built: no paths, no symbol table or DWARF.
    let status = Command::new("go")
        .args(["build", "-trimpath", "-ldflags=-s -w", "-o"])
        .arg(&output)
        .arg(".")
        .current_dir(workspace_root().join("density").join("native-go"))
        .status()
        .context("running go build (is Go installed?)")?;
    anyhow::ensure!(
        status.success(),
        "building ring-controller-runtime failed ({status})"
    );
    Ok(output)
}
