//! The suites that run guest components (the `components` feature), in one test binary that
//! links wasmtime once: components, waiting locks, the frozen WIT versions, guests in Python,
//! JavaScript and C, contention, crashes, hostile input, `stagelock run`, embedding and power loss.
//!
//! Each module is one suite, named as its guests are (`tests/guests/src/bin/<suite>_*.rs`):
//! `cargo test --test components hostile::` runs one. Their tests share this process, so none
//! may change process-wide state in it. They share more: the cores (the contention stress holds
//! [`stagelock_tests::loads_the_machine`], a test asserting a time bound holds
//! [`stagelock_tests::measures_time`]), and the descriptors (a child another test spawns holds a
//! copy of each from its fork to its exec, so a dropped lock is not always free at once). A test
//! that cannot share them (`hostile::hostile_many_handles` uses up the descriptors; the swap
//! races drop and retake one lock 20,000 times) runs in a process of its own
//! ([`stagelock_tests::in_own_process`]).

mod c_guest;
mod compat;
mod component;
mod contention;
#[cfg(unix)] // process groups and signals
mod crash;
mod embedding;
#[cfg(unix)] // symbolic links, FIFOs, sockets
mod errors;
#[cfg(unix)] // symbolic links, FIFOs, descriptor limits
mod hostile;
mod js_guest;
mod power_loss;
mod python_guest;
mod run_cli;
mod waiting;
