//! Fuzz target: the messages a guest sends must decode as the host decodes them without
//! panicking, whatever the bytes, and every message that is accepted must survive a round trip
//! (its own JSON decodes to the same message).
//!
//! The first input byte picks the message type (kube_request, http_request, log, and the
//! Registration / ReconcileResult / GuestError that result_write carries); the rest is the
//! message. Seed it with `abi/tests/corpus/*/` (prefix each file with its type's byte), as in
//! docs/abi.md "Fuzzing".
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_operator_abi::{
    GuestError, HttpRequest, KubeRequest, LogRecord, ReconcileResult, Registration,
};

fn round_trip<T: Serialize + PartialEq + Debug>(decode: fn(&[u8]) -> serde_json::Result<T>, bytes: &[u8]) {
    if let Ok(message) = decode(bytes) {
        let written = serde_json::to_vec(&message).expect("an accepted message serializes");
        let again = decode(&written).expect("an accepted message's own JSON decodes");
        assert_eq!(again, message, "the round trip changed the message");
    }
}

fn serde<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_slice(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, message)) = data.split_first() else { return };
    match kind % 6 {
        0 => round_trip(KubeRequest::from_json_slice, message),
        1 => round_trip(serde::<HttpRequest>, message),
        2 => round_trip(serde::<LogRecord>, message),
        3 => round_trip(serde::<Registration>, message),
        4 => round_trip(serde::<ReconcileResult>, message),
        _ => round_trip(serde::<GuestError>, message),
    }
});
