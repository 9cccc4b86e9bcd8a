//! Writing a new project to disk: into a directory that does not exist or is empty (never over
//! someone's files), with every file rendered before the first is written, so a template error
//! leaves nothing behind.
use std::path::{Path, PathBuf};

use super::names::Names;
use super::sdk::{self, Checkout};
use super::templates;
use super::Lang;

/// Writes the project for `names` in `lang` to `dir`, building against `checkout`'s SDK, and
/// returns the paths written, relative to `dir`.
pub fn write(
    lang: Lang,
    names: &Names,
    dir: &Path,
    checkout: &Checkout,
) -> Result<Vec<PathBuf>, String> {
    ensure_empty(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let project = dir
        .canonicalize()
        .map_err(|e| format!("reading {}: {e}", dir.display()))?;

    let mut values = names.placeholders();
    values.push((
        "sdk_rust_path",
        sdk::reference(&project, &checkout.sdk_rust(), checkout),
    ));
    values.push((
        "sdk_go_path",
        sdk::reference(&project, &checkout.sdk_go(), checkout),
    ));
    let rendered = templates::files(lang)
        .iter()
        .map(|template| {
            templates::render(template.text, &values)
                .map(|text| (PathBuf::from(template.path), text))
                .map_err(|e| format!("template {}: {e}", template.path))
        })
        .collect::<Result<Vec<_>, String>>()?;

    let mut written = Vec::new();
    for (path, text) in rendered {
        let target = project.join(&path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&target, text).map_err(|e| format!("writing {}: {e}", target.display()))?;
        written.push(path);
    }
    // The dependency versions the SDK is tested with, rather than whatever is newest today; cargo
    // drops the entries the project does not use on its first build.
    if lang == Lang::Rust {
        if let Some(lock) = checkout.cargo_lock() {
            std::fs::copy(&lock, project.join("Cargo.lock"))
                .map_err(|e| format!("copying {}: {e}", lock.display()))?;
            written.push(PathBuf::from("Cargo.lock"));
        }
    }
    Ok(written)
}

/// A directory that is missing or empty; anything else is refused.
fn ensure_empty(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} exists and is not empty: refusing to write a project over it (choose another --dir, or remove it)",
                    dir.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if dir.exists() && !dir.is_dir() => Err(format!(
            "{} exists and is not a directory ({e})",
            dir.display()
        )),
        Err(e) => Err(format!("reading {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ensure_empty(dir.path()), Ok(()));
        assert_eq!(ensure_empty(&dir.path().join("new")), Ok(()));
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let error = ensure_empty(dir.path()).unwrap_err();
        assert!(error.contains("is not empty"), "{error}");
        let error = ensure_empty(&dir.path().join("file")).unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
    }
}
