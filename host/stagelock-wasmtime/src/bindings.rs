//! The one `bindgen!` of the crate: host bindings for the `stagelock:staging` WIT package.
//!
//! WASI's types come from `wasmtime_wasi`, so a guest's `borrow<descriptor>` arrives as a
//! handle to the very `Descriptor` that wasi:filesystem keeps in the store's `ResourceTable`.
//! Our `staging-lock` resource is the native [`StagingLock`](stagelock::StagingLock). Every import
//! is trappable: a bad handle traps, everything else is an `error` the guest can handle.

wasmtime::component::bindgen!({
    world: "stagelock:staging/imports",
    path: "wit",
    with: {
        "wasi": wasmtime_wasi::p2::bindings,
        "stagelock:staging/locks.staging-lock": ::stagelock::StagingLock,
        "stagelock:staging/staging.staging-area": ::stagelock::StagingArea,
        "stagelock:staging/staging.stage": ::stagelock::Stage,
    },
    imports: { default: trappable },
    require_store_data_send: true,
});

pub use self::stagelock::staging::{locks, staging};
