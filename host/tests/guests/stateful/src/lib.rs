//! A test operator that keeps a configurable amount of live state in its linear memory and can
//! prove, on request, that the state is intact: the subject of the host's swap tests and figures.
//!
//! Init config (all optional): `stateBytes` (default 1 MiB) of pseudo-random bytes derived from
//! `seed` (default 1) are allocated and kept; `touchPerReconcile` (default 16) is how many bytes,
//! at pseudo-random places, an ordinary reconcile changes.
//!
//! The guest keeps a position-weighted checksum of everything it holds, updated with every change.
//! Reconcile requests are told apart by the object's name:
//!
//! - `verify`: recomputes the checksum over the whole state and fails if it differs from the
//!   running one;
//! - `grow-<KiB>`: allocates and keeps that many more KiB of pseudo-random bytes;
//! - `spin`: loops forever (for deadline tests); `hoard`: allocates without bound (memory limit);
//! - anything else: changes `touchPerReconcile` bytes of the state.
//!
//! Every reconcile also fails if the monotonic clock reads earlier than at the previous call.
//! A successful reconcile logs `state reconciles=<n> inits=<i> sum=<checksum> bytes=<held>`,
//! where `inits` counts init calls since the module was instantiated.

use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;
use test_guest_glue::export_operator;
use wasm_operator_abi::{
    GuestError, InitInput, LogLevel, ReconcileRequest, ReconcileResult, Registration, WatchSpec,
};

struct State {
    /// The live state: `stateBytes` from init, then every `grow-` block, in order.
    blocks: Vec<Vec<u8>>,
    held_bytes: u64,
    /// Sum over every held byte of `byte * (position + 1)`, wrapping; kept up to date.
    checksum: u64,
    reconciles: u64,
    touch_per_reconcile: u64,
    random: u64,
    last_clock_reading: Instant,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static INITS: Mutex<u64> = Mutex::new(0);
/// Memory kept alive by `hoard`.
static HOARD: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

export_operator!(init, reconcile);

fn init(input: InitInput) -> Result<Registration, GuestError> {
    let config = &input.config;
    let number =
        |key: &str, default: u64| config.get(key).and_then(Value::as_u64).unwrap_or(default);
    let mut state = State {
        blocks: Vec::new(),
        held_bytes: 0,
        checksum: 0,
        reconciles: 0,
        touch_per_reconcile: number("touchPerReconcile", 16),
        random: number("seed", 1).max(1),
        last_clock_reading: Instant::now(),
    };
    state.add_block(number("stateBytes", 1 << 20) as usize);
    *lock(&STATE) = Some(state);
    *lock(&INITS) += 1;
    Ok(Registration::new(WatchSpec::new("v1", "ConfigMap")))
}

fn reconcile(request: ReconcileRequest) -> Result<ReconcileResult, GuestError> {
    let mut guard = lock(&STATE);
    let state = guard
        .as_mut()
        .ok_or_else(|| GuestError::new("reconcile before init: the guest's state is missing"))?;
    let now = Instant::now();
    if now
        .checked_duration_since(state.last_clock_reading)
        .is_none()
    {
        return Err(GuestError::new("the monotonic clock went backwards"));
    }
    state.last_clock_reading = now;
    state.reconciles += 1;

    let name = request.name.as_str();
    if name == "verify" {
        let actual = state.recompute_checksum();
        if actual != state.checksum {
            return Err(GuestError::new(format!(
                "state corrupted: running checksum {} but the held bytes sum to {actual}",
                state.checksum
            )));
        }
    } else if let Some(kib) = name.strip_prefix("grow-") {
        let kib: usize = kib
            .parse()
            .map_err(|_| GuestError::new(format!("bad grow request {name:?}")))?;
        state.add_block(kib * 1024);
    } else if name == "spin" {
        drop(guard);
        let mut counter = 0u64;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    } else if name == "hoard" {
        drop(guard);
        loop {
            lock(&HOARD).push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    } else {
        for _ in 0..state.touch_per_reconcile {
            state.touch();
        }
    }
    test_guest_glue::log(
        LogLevel::Info,
        &format!(
            "state reconciles={} inits={} sum={} bytes={}",
            state.reconciles,
            *lock(&INITS),
            state.checksum,
            state.held_bytes
        ),
    );
    Ok(ReconcileResult::default())
}

impl State {
    fn next_random(&mut self) -> u64 {
        // xorshift64: cheap, deterministic, and its bytes are rarely zero.
        self.random ^= self.random << 13;
        self.random ^= self.random >> 7;
        self.random ^= self.random << 17;
        self.random
    }

    fn add_block(&mut self, len: usize) {
        let mut block = vec![0u8; len];
        for (offset, byte) in block.iter_mut().enumerate() {
            *byte = (self.next_random() >> 24) as u8;
            self.checksum = self
                .checksum
                .wrapping_add(weighted(*byte, self.held_bytes + offset as u64));
        }
        self.held_bytes += len as u64;
        self.blocks.push(block);
    }

    /// Changes one held byte at a pseudo-random position, keeping the checksum up to date.
    fn touch(&mut self) {
        if self.held_bytes == 0 {
            return;
        }
        let mut position = self.next_random() % self.held_bytes;
        let mut base = 0u64;
        for block in &mut self.blocks {
            if position < block.len() as u64 {
                let byte = &mut block[position as usize];
                let old = *byte;
                let new = old.wrapping_mul(31).wrapping_add(7);
                *byte = new;
                self.checksum = self
                    .checksum
                    .wrapping_sub(weighted(old, base + position))
                    .wrapping_add(weighted(new, base + position));
                return;
            }
            position -= block.len() as u64;
            base += block.len() as u64;
        }
    }

    fn recompute_checksum(&self) -> u64 {
        let mut position = 0u64;
        let mut sum = 0u64;
        for block in &self.blocks {
            for &byte in block {
                sum = sum.wrapping_add(weighted(byte, position));
                position += 1;
            }
        }
        sum
    }
}

fn weighted(byte: u8, position: u64) -> u64 {
    u64::from(byte).wrapping_mul(position + 1)
}

fn lock<T>(mutex: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
