//! The messages a guest sends the host (the inputs of `kube_request`, `http_request` and `log`,
//! and what `result_write` carries back from init and reconcile) are decoded from untrusted
//! bytes: decoding must return, never panic, on anything, and whatever it accepts must survive
//! a round trip. Seeds are the corpus in tests/corpus/<type>/ (the specification's examples);
//! each is damaged thousands of ways from a fixed seed, and random and deeply nested buffers
//! are tried too.

mod damage;

use std::fmt::Debug;
use std::path::PathBuf;

use damage::{for_each_variant, Rng, Rounds};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_operator_abi::{
    GuestError, HttpRequest, KubeRequest, LogRecord, ReconcileResult, Registration,
};

/// Bytes that change a JSON document's structure, or are not text at all.
const JSON_BOUNDARY_BYTES: &[u8] = b"{}[]\":,\\0-e.tnf \x00\xff\xc3";

const ROUNDS: Rounds = Rounds {
    bit_flips: 400,
    replacements: 400,
    insertions_and_deletions: 400,
};

/// A decoder as the host runs it, and the check that an accepted message round-trips.
fn decoder<T>(decode: fn(&[u8]) -> serde_json::Result<T>) -> impl Fn(&[u8]) -> bool
where
    T: Serialize + PartialEq + Debug,
{
    move |bytes| match decode(bytes) {
        Ok(message) => {
            let written = serde_json::to_vec(&message).expect("an accepted message serializes");
            let again = decode(&written).unwrap_or_else(|e| {
                panic!("{message:?} was accepted but its own JSON is refused: {e}")
            });
            assert_eq!(
                again,
                message,
                "round trip changed {}",
                String::from_utf8_lossy(bytes)
            );
            true
        }
        Err(_) => false,
    }
}

fn serde_decoder<T>() -> impl Fn(&[u8]) -> bool
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    decoder::<T>(|bytes| serde_json::from_slice(bytes))
}

fn corpus(message_type: &str) -> Vec<Vec<u8>> {
    let package =
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let dir = PathBuf::from(package)
        .join("tests/corpus")
        .join(message_type);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Runs `decode` over every damaged variant of the type's corpus; every seed must be accepted.
fn damage_corpus(message_type: &str, decode: impl Fn(&[u8]) -> bool) {
    let mut rng = Rng(0x5eed_0fab_1e00_0000 ^ message_type.len() as u64);
    let (mut checked, mut accepted) = (0, 0);
    for seed in corpus(message_type) {
        assert!(
            decode(&seed),
            "a {message_type} seed is refused: {}",
            String::from_utf8_lossy(&seed)
        );
        checked += for_each_variant(&seed, &mut rng, &ROUNDS, JSON_BOUNDARY_BYTES, |bytes| {
            accepted += usize::from(decode(bytes));
        });
    }
    // Damage mostly breaks a message; some variants (a changed letter in a string) still parse.
    assert!(checked > 2000, "only {checked} variants of {message_type}");
    assert!(
        accepted < checked,
        "every variant of {message_type} was accepted"
    );
}

#[test]
fn kube_requests_decode_or_fail_cleanly() {
    damage_corpus("KubeRequest", decoder(KubeRequest::from_json_slice));
}

#[test]
fn http_requests_decode_or_fail_cleanly() {
    damage_corpus("HttpRequest", serde_decoder::<HttpRequest>());
}

#[test]
fn log_records_decode_or_fail_cleanly() {
    damage_corpus("LogRecord", serde_decoder::<LogRecord>());
}

#[test]
fn registrations_decode_or_fail_cleanly() {
    damage_corpus("Registration", serde_decoder::<Registration>());
}

#[test]
fn reconcile_results_decode_or_fail_cleanly() {
    damage_corpus("ReconcileResult", serde_decoder::<ReconcileResult>());
}

#[test]
fn guest_errors_decode_or_fail_cleanly() {
    damage_corpus("GuestError", serde_decoder::<GuestError>());
}

type Decoder = Box<dyn Fn(&[u8]) -> bool>;

#[test]
fn random_and_deeply_nested_buffers_are_refused_without_panicking() {
    let decoders: Vec<Decoder> = vec![
        Box::new(decoder(KubeRequest::from_json_slice)),
        Box::new(serde_decoder::<HttpRequest>()),
        Box::new(serde_decoder::<LogRecord>()),
        Box::new(serde_decoder::<Registration>()),
        Box::new(serde_decoder::<ReconcileResult>()),
        Box::new(serde_decoder::<GuestError>()),
    ];
    let mut rng = Rng(0x0ddb_17e5_0000_0001);
    let mut buffers: Vec<Vec<u8>> = (0..500)
        .map(|_| (0..rng.below(256)).map(|_| rng.byte()).collect())
        .collect();
    // Nesting far beyond any message: a recursive reader must stop, not overflow its stack.
    for open in [b'[', b'{'] {
        buffers.push(vec![open; 100_000]);
    }
    buffers.push(
        format!(
            "{{\"verb\":\"create\",\"body\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .into_bytes(),
    );
    for buffer in &buffers {
        for decode in &decoders {
            decode(buffer);
        }
    }
}
