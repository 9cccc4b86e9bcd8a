//! The functions of WASI preview 1 (`wasi_snapshot_preview1`), the only import module besides
//! `wasm_operator` that a guest may use.
//!
//! The list is the complete set of functions in the `wasi_snapshot_preview1` witx definition.
//! Toolchains (Rust's std on wasm32-wasip1, Go's and TinyGo's runtimes) import a subset of it;
//! the host provides all of them through wasmtime-wasi, so validation only needs the names: an
//! import outside this list could never be linked.

/// Every function of `wasi_snapshot_preview1`.
pub const WASI_PREVIEW1_FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// Whether `name` is a function of `wasi_snapshot_preview1`.
pub fn is_wasi_preview1_function(name: &str) -> bool {
    WASI_PREVIEW1_FUNCTIONS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_functions_toolchains_import() {
        // Imported by Rust's std, Go's runtime and TinyGo's runtime respectively.
        for name in [
            "fd_write",
            "environ_sizes_get",
            "proc_exit",
            "clock_time_get",
            "random_get",
        ] {
            assert!(is_wasi_preview1_function(name), "{name}");
        }
        assert!(
            !is_wasi_preview1_function("sock_open"),
            "not part of preview 1"
        );
        assert!(!is_wasi_preview1_function("thread-spawn"));
        assert_eq!(WASI_PREVIEW1_FUNCTIONS.len(), 46);
    }
}
