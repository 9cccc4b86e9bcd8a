//! The largest payload a guest may hand the host in one ABI call, per import and per export
//! result. docs/abi.md ("Size limits") lists the same numbers; the host rejects a longer
//! `(ptr, len)` as an ABI violation before it reads a single byte of it.
//!
//! Why bounds at all: the host turns a guest's JSON into owned values (`serde_json::Value` for
//! Kubernetes bodies and log fields), and the densest JSON (`[0,0,0,...]`, two bytes per element)
//! becomes a 32-byte value per element. Without a bound, a guest with a large memory could make
//! the host allocate many times its own memory cap in one call.

use crate::names::{HTTP_REQUEST, KUBE_REQUEST, LOG, RESULT_WRITE};

/// `kube_request`: the API server itself refuses request bodies over 3 MiB, so a larger
/// KubeRequest could never succeed.
pub const MAX_KUBE_REQUEST_BYTES: usize = 3 << 20;

/// `http_request`: the whole HttpRequest message, body included.
pub const MAX_HTTP_REQUEST_BYTES: usize = 1 << 20;

/// `log`: one LogRecord, fields included. A log line is for people to read.
pub const MAX_LOG_RECORD_BYTES: usize = 64 << 10;

/// `result_write`: what init (a Registration or GuestError) and reconcile (a ReconcileResult or
/// GuestError) hand back.
pub const MAX_RESULT_BYTES: usize = 1 << 20;

/// The limit of `import`, for the imports that read guest bytes; `None` for the others.
pub fn max_payload_bytes(import: &str) -> Option<usize> {
    match import {
        KUBE_REQUEST => Some(MAX_KUBE_REQUEST_BYTES),
        HTTP_REQUEST => Some(MAX_HTTP_REQUEST_BYTES),
        LOG => Some(MAX_LOG_RECORD_BYTES),
        RESULT_WRITE => Some(MAX_RESULT_BYTES),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{INPUT_READ, RESPONSE_READ};

    #[test]
    fn every_import_that_reads_guest_bytes_has_a_limit() {
        assert_eq!(max_payload_bytes(KUBE_REQUEST), Some(3 * 1024 * 1024));
        assert_eq!(max_payload_bytes(HTTP_REQUEST), Some(1024 * 1024));
        assert_eq!(max_payload_bytes(LOG), Some(64 * 1024));
        assert_eq!(max_payload_bytes(RESULT_WRITE), Some(1024 * 1024));
        // These copy host bytes into the guest, whose own buffer bounds them.
        assert_eq!(max_payload_bytes(INPUT_READ), None);
        assert_eq!(max_payload_bytes(RESPONSE_READ), None);
    }
}
