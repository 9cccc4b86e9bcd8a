//! The `wasm_operator` imports, as docs/abi.md declares them, with thin wrappers. Unsafe calls
//! with arbitrary pointers ([`kube_request_at`]) exist for the probes that break the ABI.

mod imports {
    #[link(wasm_import_module = "wasm_operator")]
    extern "C" {
        pub fn input_read(ptr: *mut u8, len: u32) -> u32;
        pub fn result_write(ptr: *const u8, len: u32);
        pub fn response_read(ptr: *mut u8, len: u32) -> u32;
        pub fn kube_request(ptr: *const u8, len: u32) -> u32;
        pub fn http_request(ptr: *const u8, len: u32) -> u32;
        pub fn log(ptr: *const u8, len: u32);
    }
}

/// Reads up to `len` bytes of the current call's input.
pub fn input(len: u32) -> Vec<u8> {
    let mut buffer = vec![0u8; len as usize];
    // SAFETY: `buffer` is live and `len` bytes long for the whole call.
    let copied = unsafe { imports::input_read(buffer.as_mut_ptr(), len) };
    buffer.truncate(copied as usize);
    buffer
}

pub fn result_write(bytes: &[u8]) {
    // SAFETY: the host copies `bytes.len()` bytes out of a live slice.
    unsafe { imports::result_write(bytes.as_ptr(), bytes.len() as u32) }
}

/// Copies up to `buffer.len()` bytes of the pending response; returns how many.
pub fn response_read(buffer: &mut [u8]) -> u32 {
    // SAFETY: the host writes at most `buffer.len()` bytes into a live, exclusive slice.
    unsafe { imports::response_read(buffer.as_mut_ptr(), buffer.len() as u32) }
}

/// Performs a KubeRequest; returns the length of the response now pending.
pub fn kube_request(request: &[u8]) -> u32 {
    // SAFETY: the host copies the request out of a live slice.
    unsafe { imports::kube_request(request.as_ptr(), request.len() as u32) }
}

/// `kube_request` with any pointer, valid or not: the host must refuse a bad one.
pub fn kube_request_at(ptr: u32, len: u32) -> u32 {
    // SAFETY: the host checks (ptr, len) against the memory; it never dereferences it here.
    unsafe { imports::kube_request(ptr as usize as *const u8, len) }
}

pub fn http_request(request: &[u8]) -> u32 {
    // SAFETY: as in `kube_request`.
    unsafe { imports::http_request(request.as_ptr(), request.len() as u32) }
}

pub fn log(record: &[u8]) {
    // SAFETY: as in `result_write`.
    unsafe { imports::log(record.as_ptr(), record.len() as u32) }
}

/// The whole pending response of `len` bytes.
pub fn read_response(len: u32) -> Vec<u8> {
    let mut buffer = vec![0u8; len as usize];
    let copied = response_read(&mut buffer);
    buffer.truncate(copied as usize);
    buffer
}
