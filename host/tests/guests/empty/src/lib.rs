//! A test operator that does nothing: init registers For `v1` ConfigMap and reconcile returns an
//! empty result without any host call. What a call into it costs is the host's own overhead
//! (input copy, JSON decode and encode in the guest, result copy, fiber switch).

use test_guest_glue::export_operator;
use wasm_operator_abi::{
    GuestError, InitInput, ReconcileRequest, ReconcileResult, Registration, WatchSpec,
};

export_operator!(init, reconcile);

fn init(_input: InitInput) -> Result<Registration, GuestError> {
    Ok(Registration::new(WatchSpec::new("v1", "ConfigMap")))
}

fn reconcile(_request: ReconcileRequest) -> Result<ReconcileResult, GuestError> {
    Ok(ReconcileResult::done())
}
