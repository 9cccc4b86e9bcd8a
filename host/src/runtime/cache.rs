//! The on-disk cache of precompiled modules.
//!
//! Compiling a multi-megabyte operator with Cranelift takes seconds; loading a precompiled
//! artifact with [`Module::deserialize_file`] takes well under a millisecond and maps the code
//! from the file, so its pages are shared and reclaimable rather than anonymous memory.
//!
//! An artifact's file name is keyed by the SHA-256 of the module bytes *and* the engine's
//! precompile-compatibility hash, so a host upgrade or a configuration change simply misses the
//! cache instead of loading incompatible code. A module compiled after a load-time transformation
//! (the instrumentation for swap) is keyed by the original module's digest plus a variant naming
//! the transformation and its version, so transformed and untransformed code never mix. Each artifact has a sidecar file holding the
//! SHA-256 of the artifact itself; both are written to a temporary name, fsynced and renamed, so
//! a crash never leaves a half-written file under a final name.
//!
//! # Why deserializing is sound here
//!
//! `Module::deserialize_file` is `unsafe` because the file is trusted to be wasmtime's own output:
//! arbitrary bytes could be executed as machine code. The files in `cache_dir` are only ever
//! produced by [`Engine::precompile_module`] in this process or an earlier run of this host, they
//! reach their final name only by atomic rename, and their content is checked against the
//! recorded SHA-256 before wasmtime sees them, which catches truncation and corruption. The
//! remaining assumption is that the cache directory is writable only by the host, as with any
//! directory holding executable code; an artifact that fails any check is deleted and recompiled.
//!
//! That assumption is checked, not hoped for: the directory must be the host user's own with no
//! access for group or others ([`ensure_private_dir`]; created 0700, an own 0755 one tightened).
//! Otherwise the cache is disabled with a warning and every module is compiled in memory.
//!
//! # Why a mapped artifact cannot raise SIGBUS
//!
//! wasmtime maps the artifact; a page of the mapping beyond the end of a file that was truncated
//! afterwards would raise SIGBUS and kill the host. The artifact is therefore opened once, its
//! content hashed through that descriptor, its length checked against fstat, and that same
//! descriptor (the same inode, whatever happens to the name meanwhile) handed to wasmtime. The
//! host itself never writes to an artifact after its rename, and nobody but the host's user may
//! write in the directory, so nothing can shorten it while it is mapped.

use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::private_dir::ensure_private_dir;

/// Where a module's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// A verified precompiled artifact from the cache directory.
    Cache,
    /// Compiled now (cache miss, unusable cache file, or unwritable cache directory).
    Compiled,
    /// Already loaded for another operator: the same compiled module is shared.
    AlreadyLoaded,
}

/// The precompiled-artifact directory for one engine.
pub(crate) struct ModuleCache {
    /// `None`: the cache is disabled (the directory is not private to the host).
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Distinguishes concurrent temporary files written by this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl ModuleCache {
    /// The cache in `dir`, created with mode 0700 if missing. A directory that is not the host
    /// user's own, or that group or others may write, disables the cache (with a warning saying
    /// what to do) rather than loading code others could have written.
    pub fn new(engine: &Engine, dir: PathBuf) -> io::Result<ModuleCache> {
        let dir = match ensure_private_dir(&dir, "module cache directory") {
            Ok(()) => Some(dir),
            Err(reason) if !dir.exists() => {
                return Err(io::Error::other(reason));
            }
            Err(reason) => {
                tracing::warn!(
                    "{reason}. The precompiled module cache is disabled: every module is compiled \
                     at load and nothing is read from or written to that directory"
                );
                None
            }
        };
        Ok(ModuleCache {
            dir,
            engine_key: engine_compatibility_key(engine),
        })
    }

    /// The valid cached artifact for the module whose SHA-256 hex digest is `module_sha256`,
    /// transformed as `variant` names (`None`: as is). An unusable artifact is removed.
    pub fn cached(
        &self,
        engine: &Engine,
        module_sha256: &str,
        variant: Option<&str>,
    ) -> Option<Module> {
        let artifact = self.artifact_path(module_sha256, variant)?;
        match self.load_cached(engine, &artifact) {
            Ok(module) => module,
            Err(reason) => {
                tracing::warn!(
                    path = %artifact.display(),
                    "ignoring unusable precompiled module ({reason}); recompiling"
                );
                remove_artifact(&artifact);
                None
            }
        }
    }

    /// Returns the module for `wasm`, from the cache when a valid artifact exists, otherwise
    /// compiled and then cached. `wasm` is the module whose SHA-256 hex digest is `module_sha256`,
    /// transformed as `variant` names (`None`: as is).
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        module_sha256: &str,
        variant: Option<&str>,
    ) -> wasmtime::Result<(Module, LoadSource)> {
        if let Some(module) = self.cached(engine, module_sha256, variant) {
            return Ok((module, LoadSource::Cache));
        }
        let compiled = engine.precompile_module(wasm)?;
        if let Some(artifact) = self.artifact_path(module_sha256, variant) {
            match write_artifact(&artifact, &compiled)
                .and_then(|()| open_exact(&artifact, &compiled))
            {
                Ok(file) => {
                    // SAFETY: `file` is the inode written just now from `precompile_module`
                    // output, opened by this process and checked to hold exactly those bytes;
                    // see the module docs.
                    match unsafe { Module::deserialize_open_file(engine, file) } {
                        Ok(module) => return Ok((module, LoadSource::Compiled)),
                        Err(error) => tracing::warn!(
                            path = %artifact.display(),
                            "could not map the freshly written precompiled module ({error}); \
                             keeping it in memory instead"
                        ),
                    }
                }
                Err(error) => tracing::warn!(
                    path = %artifact.display(),
                    "cannot write to the module cache ({error}); the module stays in memory and \
                     will be compiled again next time: make the cache directory writable"
                ),
            }
        }
        // SAFETY: `compiled` is this engine's own `precompile_module` output, still in memory.
        let module = unsafe { Module::deserialize(engine, &compiled)? };
        Ok((module, LoadSource::Compiled))
    }

    /// `None` when the cache is disabled.
    fn artifact_path(&self, module_sha256: &str, variant: Option<&str>) -> Option<PathBuf> {
        let variant = variant
            .map(|variant| format!("-{variant}"))
            .unwrap_or_default();
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!(
            "{module_sha256}-{}{variant}.cwasm",
            self.engine_key
        )))
    }

    /// `Ok(None)` on a plain miss; `Err` with a reason when a file exists but is unusable.
    fn load_cached(&self, engine: &Engine, artifact: &Path) -> Result<Option<Module>, String> {
        let recorded = match fs::read_to_string(checksum_path(artifact)) {
            Ok(recorded) => recorded,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("reading its checksum: {error}")),
        };
        let mut file = match File::open(artifact) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("opening it: {error}")),
        };
        let (actual, hashed_bytes) =
            sha256_of(&mut file).map_err(|error| format!("reading it: {error}"))?;
        if recorded.trim() != actual {
            return Err("its checksum does not match".to_owned());
        }
        let stat = file
            .metadata()
            .map_err(|error| format!("inspecting it: {error}"))?;
        if !stat.is_file() || stat.len() != hashed_bytes {
            return Err(format!(
                "it is {} bytes long, {hashed_bytes} were verified",
                stat.len()
            ));
        }
        // SAFETY: `file` is the very inode whose content was just hashed through this descriptor
        // and matches the checksum recorded when this host wrote it; it lies in a directory only
        // the host's user may write, and the host never modifies an artifact after its rename,
        // so it cannot be shortened while mapped. See the module docs.
        unsafe { Module::deserialize_open_file(engine, file) }
            .map(Some)
            .map_err(|error| format!("wasmtime rejected it: {error}"))
    }
}

/// A stable text key for [`Engine::precompile_compatibility_hash`]. The std `DefaultHasher` is
/// not guaranteed stable across Rust releases, so the hash is fed into SHA-256 instead.
fn engine_compatibility_key(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            // Only the SHA-256 state is used; `Hash` implementations never call `finish`.
            0
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

fn checksum_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// The SHA-256 hex digest of everything readable from `file`, and how many bytes that was.
fn sha256_of(file: &mut File) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok((hex::encode(hasher.finalize()), total));
        }
        total += read as u64;
        hasher.update(&buffer[..read]);
    }
}

/// Opens the artifact just written and checks it holds exactly `compiled`'s length, so the
/// descriptor handed to wasmtime is the complete file.
fn open_exact(artifact: &Path, compiled: &[u8]) -> io::Result<File> {
    let file = File::open(artifact)?;
    let len = file.metadata()?.len();
    if len != compiled.len() as u64 {
        return Err(io::Error::other(format!(
            "it is {len} bytes long right after writing {} bytes",
            compiled.len()
        )));
    }
    Ok(file)
}

/// Writes the artifact and then its checksum, each atomically. A reader that sees the checksum
/// therefore sees the complete artifact it describes.
fn write_artifact(artifact: &Path, compiled: &[u8]) -> io::Result<()> {
    write_atomically(artifact, compiled)?;
    write_atomically(
        &checksum_path(artifact),
        hex::encode(Sha256::digest(compiled)).as_bytes(),
    )
}

fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // Persist the rename itself; failure here only risks a cache miss after a crash.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Removes a bad artifact and its checksum. The checksum goes first so that a concurrent reader
/// never pairs an old checksum with a newly written artifact.
fn remove_artifact(artifact: &Path) {
    let _ = fs::remove_file(checksum_path(artifact));
    let _ = fs::remove_file(artifact);
}
