//! Directories whose files the host maps into memory or executes (the precompiled module cache,
//! the swap state directory) must be the host's alone: a file another user can write or
//! truncate there could become machine code the host runs, or make a mapped page raise SIGBUS
//! and kill the host. [`ensure_private_dir`] creates such a directory with mode 0700, or checks
//! an existing one: a real directory (not a symlink), owned by the host's user, with no access
//! for group or others. This is the trust boundary: processes running as the host's user (and
//! root) are trusted, nobody else is.
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and missing parents) with mode 0700, or checks the existing one. A directory
/// owned by the host's user that only it can write (e.g. 0755) is tightened to 0700: nobody
/// else can have put anything in it. The error says what is wrong and what to do.
pub fn ensure_private_dir(dir: &Path, what: &str) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|error| format!("cannot create the {what} {}: {error}", dir.display()))?;
        }
        Err(error) => {
            return Err(format!(
                "cannot inspect the {what} {}: {error}",
                dir.display()
            ))
        }
        Ok(_) => {}
    }
    let metadata = fs::symlink_metadata(dir)
        .map_err(|error| format!("cannot inspect the {what} {}: {error}", dir.display()))?;
    check(dir, what, &metadata, effective_uid())?;
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|error| {
            format!(
                "cannot restrict the {what} {} to mode 0700: {error}",
                dir.display()
            )
        })?;
        tracing::info!(dir = %dir.display(), "restricted the {what} to mode 0700 (was {mode:o})");
    }
    Ok(())
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The checks on an existing directory; `uid` is the host's effective user.
fn check(dir: &Path, what: &str, metadata: &fs::Metadata, uid: u32) -> Result<(), String> {
    let shown = dir.display();
    if metadata.file_type().is_symlink() {
        return Err(format!(
            "the {what} {shown} is a symbolic link; use the directory itself (a link may be \
             redirected by whoever owns it)"
        ));
    }
    if !metadata.is_dir() {
        return Err(format!("the {what} {shown} is not a directory"));
    }
    if metadata.uid() != uid {
        return Err(format!(
            "the {what} {shown} is owned by user {}, not by the host's user {uid}: files in it \
             could be replaced by someone else; choose a directory the host's user owns",
            metadata.uid()
        ));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "the {what} {shown} is writable by group or others (mode {mode:o}): files in it \
             could be someone else's; remove it or `chmod 700` it after checking its content, \
             or choose another directory"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_missing_directory_is_created_private() {
        let base = temp();
        let dir = base.path().join("a/b/cache");
        ensure_private_dir(&dir, "module cache").unwrap();
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn an_own_directory_only_the_owner_writes_is_tightened() {
        let dir = temp();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(dir.path(), "module cache").unwrap();
        assert_eq!(fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_world_or_group_writable_directory_is_refused() {
        for mode in [0o777, 0o1777, 0o775, 0o720] {
            let dir = temp();
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            let error = ensure_private_dir(dir.path(), "module cache").unwrap_err();
            assert!(
                error.contains("writable by group or others"),
                "{mode:o}: {error}"
            );
            // Refused, not silently fixed: the content may already be someone else's.
            assert_eq!(fs::metadata(dir.path()).unwrap().mode() & 0o7777, mode);
        }
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let dir = temp();
        let metadata = fs::symlink_metadata(dir.path()).unwrap();
        let other = metadata.uid().wrapping_add(1);
        let error = check(dir.path(), "module cache", &metadata, other).unwrap_err();
        assert!(error.contains("not by the host's user"), "{error}");
    }

    #[test]
    fn a_symlink_and_a_file_are_refused() {
        let base = temp();
        let target = base.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = ensure_private_dir(&link, "module cache").unwrap_err();
        assert!(error.contains("symbolic link"), "{error}");
        let file = base.path().join("file");
        fs::write(&file, b"").unwrap();
        let error = ensure_private_dir(&file, "module cache").unwrap_err();
        assert!(error.contains("not a directory"), "{error}");
    }

    #[test]
    fn the_temporary_directory_is_never_acceptable() {
        let error = ensure_private_dir(&std::env::temp_dir(), "module cache").unwrap_err();
        assert!(error.contains("writable by group or others"), "{error}");
    }
}
