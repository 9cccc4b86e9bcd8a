//! The host functions of import module `wasm_operator`: the guest's side of the ABI.
//!
//! Copying functions (`input_read`, `result_write`, `response_read`, `log`) are synchronous.
//! `kube_request` and `http_request` are async: the guest blocks while the host awaits the
//! operator's [`HostServices`](super::HostServices) on the instance's fiber, so guest code stays
//! synchronous while many operators wait concurrently on one tokio runtime.
//!
//! Nothing a guest passes can panic the host: every length is checked against the import's
//! payload limit (`wasm_operator_abi::limits`) before a byte is read, every pointer range is
//! bounds-checked, every request is parsed as JSON straight from the guest's memory (no copy), and
//! every mistake fails the call with an [`AbiViolation`](super::error::AbiViolation) that names
//! the import and the problem.

use std::future::Future;
use std::ops::Range;

use wasm_operator_abi::limits::max_payload_bytes;
use wasm_operator_abi::names::{
    HTTP_REQUEST, IMPORT_MODULE, INPUT_READ, KUBE_REQUEST, LOG, RESPONSE_READ, RESULT_WRITE,
};
use wasm_operator_abi::{HostResponse, HttpRequest, KubeRequest, LogRecord};
use wasmtime::{Caller, Linker};

use super::error::{abi_violation, outside_call, HostFailure};
use super::state::StoreState;

/// Defines every `wasm_operator` import in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    linker.func_wrap(IMPORT_MODULE, INPUT_READ, input_read)?;
    linker.func_wrap(IMPORT_MODULE, RESULT_WRITE, result_write)?;
    linker.func_wrap(IMPORT_MODULE, RESPONSE_READ, response_read)?;
    linker.func_wrap(IMPORT_MODULE, LOG, log)?;
    linker.func_wrap_async(
        IMPORT_MODULE,
        KUBE_REQUEST,
        |mut caller: Caller<'_, StoreState>, (ptr, len): (i32, i32)| {
            Box::new(async move {
                let request = read_request(
                    &mut caller,
                    ptr,
                    len,
                    KUBE_REQUEST,
                    KubeRequest::from_json_slice,
                )?;
                let services = caller.data().services.clone();
                let response = serve(&mut caller, KUBE_REQUEST, services.kube(request)).await?;
                keep_response(&mut caller, &response, KUBE_REQUEST)
            })
        },
    )?;
    linker.func_wrap_async(
        IMPORT_MODULE,
        HTTP_REQUEST,
        |mut caller: Caller<'_, StoreState>, (ptr, len): (i32, i32)| {
            Box::new(async move {
                let request = read_request(&mut caller, ptr, len, HTTP_REQUEST, |bytes| {
                    serde_json::from_slice::<HttpRequest>(bytes)
                })?;
                let services = caller.data().services.clone();
                let response = serve(&mut caller, HTTP_REQUEST, services.http(request)).await?;
                keep_response(&mut caller, &response, HTTP_REQUEST)
            })
        },
    )?;
    Ok(())
}

/// `input_read(ptr, len) -> copied`: copies up to `len` bytes of the call's input to `ptr`.
fn input_read(mut caller: Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let Some(memory) = caller.data().memory else {
        return Err(outside_call(INPUT_READ));
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let call = state.active_call(INPUT_READ)?;
    copy_into_guest(data, ptr, len, &call.input, INPUT_READ)
}

/// `result_write(ptr, len)`: the call's result is the `len` bytes at `ptr` (last write wins).
fn result_write(mut caller: Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    caller.data_mut().active_call(RESULT_WRITE)?;
    // The result must outlive the guest's buffer (the guest may free it before returning).
    let bytes = guest_payload(&caller, ptr, len, RESULT_WRITE)?.to_vec();
    caller.data_mut().active_call(RESULT_WRITE)?.result = Some(bytes);
    Ok(())
}

/// `response_read(ptr, len) -> copied`: copies up to `len` bytes of the last host call's
/// response to `ptr`.
fn response_read(mut caller: Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let Some(memory) = caller.data().memory else {
        return Err(outside_call(RESPONSE_READ));
    };
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let call = state.active_call(RESPONSE_READ)?;
    copy_into_guest(data, ptr, len, &call.response, RESPONSE_READ)
}

/// `log(ptr, len)`: hands a LogRecord to the operator's services.
fn log(mut caller: Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let record = read_request(&mut caller, ptr, len, LOG, |bytes| {
        serde_json::from_slice::<LogRecord>(bytes)
    })?;
    caller.data().services.log(record);
    Ok(())
}

/// Parses the JSON message at (ptr, len) with `parse`, after checking a call is in progress and
/// the length is within the import's limit. The bytes are parsed where they lie in the guest's
/// memory: the host holds the parsed message, never a copy of the bytes as well.
fn read_request<T>(
    caller: &mut Caller<'_, StoreState>,
    ptr: i32,
    len: i32,
    import: &str,
    parse: impl FnOnce(&[u8]) -> serde_json::Result<T>,
) -> wasmtime::Result<T> {
    caller.data_mut().active_call(import)?;
    let bytes = guest_payload(caller, ptr, len, import)?;
    parse(bytes).map_err(|error| {
        abi_violation(format!(
            "`{import}` received {len} bytes that are not a valid {} message ({error}); they \
             start with {:?}",
            message_name(import),
            preview(bytes)
        ))
    })
}

/// The `len` bytes at guest address `ptr`, borrowed from the guest's memory: refused when the
/// range is outside the memory or longer than the import's documented limit, in both cases before
/// anything is read.
fn guest_payload<'a>(
    caller: &'a Caller<'_, StoreState>,
    ptr: i32,
    len: i32,
    import: &str,
) -> wasmtime::Result<&'a [u8]> {
    let Some(memory) = caller.data().memory else {
        return Err(outside_call(import));
    };
    let data = memory.data(caller);
    let range = guest_range(ptr, len as u32 as usize, data.len(), import)?;
    if let Some(max) = max_payload_bytes(import) {
        if range.len() > max {
            return Err(abi_violation(format!(
                "`{import}` was given {} bytes, more than the {max} bytes the ABI allows per \
                 call (docs/abi.md, size limits); send less per call",
                range.len()
            )));
        }
    }
    Ok(&data[range])
}

fn message_name(import: &str) -> &'static str {
    match import {
        KUBE_REQUEST => "KubeRequest",
        HTTP_REQUEST => "HttpRequest",
        LOG => "LogRecord",
        _ => "JSON",
    }
}

/// The start of a malformed message, enough to recognise it in an error message.
fn preview(bytes: &[u8]) -> String {
    const PREVIEW_BYTES: usize = 64;
    String::from_utf8_lossy(&bytes[..bytes.len().min(PREVIEW_BYTES)]).into_owned()
}

/// Awaits a host call. Its time counts against the call's deadline, which bounds the whole
/// export call wherever it waits (`instance::within_deadline`), so no timer of its own is needed.
async fn serve(
    caller: &mut Caller<'_, StoreState>,
    import: &str,
    host_call: impl Future<Output = HostResponse>,
) -> wasmtime::Result<HostResponse> {
    let call = caller.data_mut().active_call(import)?;
    // A new host call replaces any unread response.
    call.response.clear();
    Ok(host_call.await)
}

/// Stores the response for `response_read` and returns its length, the import's return value.
fn keep_response(
    caller: &mut Caller<'_, StoreState>,
    response: &HostResponse,
    import: &str,
) -> wasmtime::Result<i32> {
    let bytes = serde_json::to_vec(response).map_err(|error| {
        wasmtime::Error::new(HostFailure(format!(
            "encoding the `{import}` response: {error}"
        )))
    })?;
    let len = i32::try_from(bytes.len()).map_err(|_| {
        wasmtime::Error::new(HostFailure(format!(
            "the `{import}` response is {} bytes, more than a 32-bit guest can address",
            bytes.len()
        )))
    })?;
    caller.data_mut().active_call(import)?.response = bytes;
    Ok(len)
}

/// Copies min(`len`, source length) bytes of `source` to guest address `ptr`.
fn copy_into_guest(
    memory: &mut [u8],
    ptr: i32,
    len: i32,
    source: &[u8],
    import: &str,
) -> wasmtime::Result<i32> {
    let count = (len as u32 as usize).min(source.len());
    let range = guest_range(ptr, count, memory.len(), import)?;
    memory[range].copy_from_slice(&source[..count]);
    // `count` <= `len`, which came from an i32, so this cannot truncate.
    Ok(count as i32)
}

/// The byte range (ptr, len) in a memory of `memory_len` bytes. Pointers and lengths are
/// unsigned 32-bit values carried in i32s, hence the `as u32` reinterpretation.
fn guest_range(
    ptr: i32,
    len: usize,
    memory_len: usize,
    import: &str,
) -> wasmtime::Result<Range<usize>> {
    let start = ptr as u32 as usize;
    match start.checked_add(len) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => Err(abi_violation(format!(
            "`{import}` was given bytes {start}..{} but the guest's memory is only {memory_len} \
             bytes long",
            start as u128 + len as u128
        ))),
    }
}
