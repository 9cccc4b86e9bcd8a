//! The `wasm_operator` imports of ABI v1, exactly as docs/abi.md declares them, behind safe
//! wrappers taking slices. Only the imports an operator actually calls end up in its module, so
//! its import section lists exactly the capabilities it uses.

mod raw {
    #[link(wasm_import_module = "wasm_operator")]
    unsafe extern "C" {
        pub fn input_read(ptr: *mut u8, len: u32) -> u32;
        pub fn result_write(ptr: *const u8, len: u32);
        pub fn response_read(ptr: *mut u8, len: u32) -> u32;
        pub fn kube_request(ptr: *const u8, len: u32) -> u32;
        pub fn http_request(ptr: *const u8, len: u32) -> u32;
        pub fn log(ptr: *const u8, len: u32);
    }
}

pub(super) fn input_read(buffer: &mut [u8]) -> u32 {
    // SAFETY: the host writes at most `buffer.len()` bytes into this live, exclusive slice.
    unsafe { raw::input_read(buffer.as_mut_ptr(), buffer.len() as u32) }
}

pub(super) fn result_write(bytes: &[u8]) {
    // SAFETY: the host copies `bytes.len()` bytes out of a live slice during the call.
    unsafe { raw::result_write(bytes.as_ptr(), bytes.len() as u32) }
}

pub(super) fn response_read(buffer: &mut [u8]) -> u32 {
    // SAFETY: as in `input_read`.
    unsafe { raw::response_read(buffer.as_mut_ptr(), buffer.len() as u32) }
}

pub(super) fn kube_request(request: &[u8]) -> u32 {
    // SAFETY: the host copies the request out of a live slice; the call blocks until answered.
    unsafe { raw::kube_request(request.as_ptr(), request.len() as u32) }
}

pub(super) fn http_request(request: &[u8]) -> u32 {
    // SAFETY: as in `kube_request`.
    unsafe { raw::http_request(request.as_ptr(), request.len() as u32) }
}

pub(super) fn log(record: &[u8]) {
    // SAFETY: as in `result_write`.
    unsafe { raw::log(record.as_ptr(), record.len() as u32) }
}

pub(super) fn now() -> std::time::SystemTime {
    // WASI's clock_time_get, which the host links for every module.
    std::time::SystemTime::now()
}
