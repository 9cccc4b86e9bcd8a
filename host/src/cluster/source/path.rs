//! A module read from a file under the host's modules directory (`--modules-dir`), refusing
//! any path that would leave it: `..` and absolute paths by their text, and symbolic links
//! pointing outside by resolving the path and checking it is still below the resolved root.
//! The file is read on the blocking pool, never on the async runtime's threads.
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::{too_large, Slot, SourceError, SourceFetcher};

impl SourceFetcher {
    pub(super) async fn path(&self, relative: &str) -> Result<(Vec<u8>, Slot), SourceError> {
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
        let root = root.clone();
        let relative = relative.to_owned();
        let max_bytes = self.limits.max_module_bytes;
        let slot = self.slots.take().await;
        let wasm = tokio::task::spawn_blocking(move || read_below(&root, &relative, max_bytes))
            .await
            .map_err(|error| {
                SourceError::unavailable(format!("reading spec.module.path failed: {error}"))
            })??;
        Ok((wasm, slot))
    }
}

/// Reads `root/relative` if, with every symbolic link resolved, it is still a regular file
/// below `root`, and at most `max_bytes` long.
fn read_below(root: &Path, relative: &str, max_bytes: usize) -> Result<Vec<u8>, SourceError> {
    let full = root.join(relative);
    let unreadable = |path: &Path, error: std::io::Error| {
        SourceError::unavailable(format!("cannot read {}: {error}", path.display()))
    };
    let real_root = root
        .canonicalize()
        .map_err(|error| unreadable(root, error))?;
    let real: PathBuf = full
        .canonicalize()
        .map_err(|error| unreadable(&full, error))?;
    if !real.starts_with(&real_root) {
        return Err(SourceError::new(
            "InvalidSource",
            format!(
                "spec.module.path {relative:?} is a symbolic link leading out of the host's \
                 modules directory (to {}); only files inside it can be used",
                real.display()
            ),
        ));
    }
    // The resolved path has no links left; O_NOFOLLOW refuses one put in its place since.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&real)
        .map_err(|error| unreadable(&full, error))?;
    let metadata = file.metadata().map_err(|error| unreadable(&full, error))?;
    if !metadata.is_file() {
        return Err(SourceError::new(
            "InvalidSource",
            format!("spec.module.path {relative:?} is not a regular file"),
        ));
    }
    if metadata.len() > max_bytes as u64 {
        return Err(too_large(&full.display().to_string(), max_bytes));
    }
    read_capped(&mut file, metadata.len() as usize, max_bytes)
        .map_err(|error| unreadable(&full, error))?
        .ok_or_else(|| too_large(&full.display().to_string(), max_bytes))
}

/// The file's content, or `None` if it grew past `max_bytes` since its size was taken.
fn read_capped(
    file: &mut File,
    expected: usize,
    max_bytes: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut wasm = Vec::with_capacity(expected);
    file.take(max_bytes as u64 + 1).read_to_end(&mut wasm)?;
    Ok((wasm.len() <= max_bytes).then_some(wasm))
}

#[cfg(test)]
mod tests {
    use super::super::SourceLimits;
    use super::*;

    fn fetcher(root: &Path, max_module_bytes: usize) -> SourceFetcher {
        let limits = SourceLimits {
            max_module_bytes,
            ..SourceLimits::default()
        };
        SourceFetcher::new(fake_client(), Some(root.to_path_buf()), limits).unwrap()
    }

    #[tokio::test]
    async fn a_path_source_stays_inside_the_modules_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.wasm"), b"\0asm").unwrap();
        let fetcher = fetcher(dir.path(), 1 << 20);
        assert_eq!(fetcher.path("m.wasm").await.unwrap().0, b"\0asm");
        for escape in ["../m.wasm", "/etc/passwd", "./m.wasm"] {
            assert_eq!(
                fetcher.path(escape).await.unwrap_err().reason,
                "InvalidSource",
                "{escape}"
            );
        }
    }

    #[tokio::test]
    async fn a_symbolic_link_out_of_the_modules_directory_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
        let modules = tempfile::tempdir().unwrap();
        std::fs::write(modules.path().join("real.wasm"), b"\0asm").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            modules.path().join("evil.wasm"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), modules.path().join("evil-dir")).unwrap();
        // A link that stays inside is fine.
        std::os::unix::fs::symlink("real.wasm", modules.path().join("alias.wasm")).unwrap();
        let fetcher = fetcher(modules.path(), 1 << 20);
        for escape in ["evil.wasm", "evil-dir/secret"] {
            let refused = fetcher.path(escape).await.unwrap_err();
            assert_eq!(refused.reason, "InvalidSource", "{escape}");
            assert!(
                refused.message.contains("symbolic link leading out"),
                "{escape}: {}",
                refused.message
            );
        }
        assert_eq!(fetcher.path("alias.wasm").await.unwrap().0, b"\0asm");
    }

    #[tokio::test]
    async fn a_file_over_the_module_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big.wasm"), vec![0u8; 4097]).unwrap();
        std::fs::create_dir(dir.path().join("dir.wasm")).unwrap();
        let fetcher = fetcher(dir.path(), 4096);
        let refused = fetcher.path("big.wasm").await.unwrap_err();
        assert!(
            refused.message.contains("larger than 4096 bytes"),
            "{}",
            refused.message
        );
        assert!(refused.message.contains("--max-module-size"));
        assert_eq!(
            fetcher.path("dir.wasm").await.unwrap_err().reason,
            "InvalidSource"
        );
    }

    fn fake_client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}
