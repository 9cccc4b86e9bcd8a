//! Offline tests of an operator from a recording of a real run (a tape, see
//! [`wasm_operator_abi::tape`]): [`record`] writes tapes as the host runs (`wasm-operator run
//! --record DIR`); [`player`] runs a module against one (`wasm-operator test MODULE --replay
//! TAPE`), answering its host calls from the recording and stopping at the first difference.
pub mod player;
pub mod record;
