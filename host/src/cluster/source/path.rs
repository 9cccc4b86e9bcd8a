//! A module read from a file under the host's modules directory (`--modules-dir`), refusing
//! any path that would leave it.
use std::path::{Component, Path};

use super::{too_large, SourceError, SourceFetcher, MAX_MODULE_BYTES};

impl SourceFetcher {
    pub(super) fn path(&self, relative: &str) -> Result<Vec<u8>, SourceError> {
        let Some(root) = &self.modules_dir else {
            return Err(SourceError::new(
                "InvalidSource",
                "spec.module.path needs the host started with --modules-dir; use a ConfigMap, http or oci source",
            ));
        };
        let path = Path::new(relative);
        // A tenant must not read arbitrary files of the host: only plain paths below the root.
        if path.is_absolute()
            || path
                .components()
                .any(|component| !matches!(component, Component::Normal(_)))
        {
            return Err(SourceError::new(
                "InvalidSource",
                format!(
                    "spec.module.path {relative:?} must be relative to the host's modules directory, without `..`"
                ),
            ));
        }
        let full = root.join(path);
        let size = std::fs::metadata(&full)
            .map_err(|error| {
                SourceError::unavailable(format!("cannot read {}: {error}", full.display()))
            })?
            .len();
        if size > MAX_MODULE_BYTES as u64 {
            return Err(too_large(&full.display().to_string()));
        }
        std::fs::read(&full).map_err(|error| {
            SourceError::unavailable(format!("cannot read {}: {error}", full.display()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_source_stays_inside_the_modules_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"\0asm").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let fetcher = SourceFetcher {
            client: fake_client(),
            http: reqwest::Client::new(),
            modules_dir: Some(dir.path().to_path_buf()),
        };
        assert_eq!(fetcher.path("m.wasm").unwrap(), b"\0asm");
        for escape in ["../m.wasm", "/etc/passwd", "./m.wasm"] {
            assert_eq!(
                fetcher.path(escape).unwrap_err().reason,
                "InvalidSource",
                "{escape}"
            );
        }
    }

    fn fake_client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}
