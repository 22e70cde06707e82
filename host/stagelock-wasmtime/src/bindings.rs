//! The host bindings of the `stagelock:staging` WIT package (shipped in this crate's `wit/`).
//!
//! WASI's types come from `wasmtime_wasi`, so a guest's `borrow<descriptor>` arrives as a handle
//! to the very `Descriptor` that wasi:filesystem keeps in the store's `ResourceTable`. The WIT
//! resources are the native core's types ([`stagelock::StagingLock`], [`stagelock::StagingArea`],
//! [`stagelock::Stage`]). Guest-visible errors are [`HostError`](crate::HostError) and
//! [`CommitFailure`](crate::CommitFailure) (`trappable_error_type`): a bad handle traps,
//! everything else becomes an `error-code` (1.0.0) or an `error` record (0.2.0, 0.1.0) the
//! guest can handle.
//!
//! Three versions of the package are served, all on the same resources, so guests built
//! against any of them exclude each other as guests of one version do: `stagelock:staging@1.0.1`
//! (this crate's `wit/`; the top level here; components built against 1.0.0 get it by semver), and the frozen `0.2.0` ([`v0_2`]) and `0.1.0`
//! ([`v0_1`]) from `wit-compat/`. Later 1.x minor versions only add items with `@since`
//! gates, so they need no frozen copy: wasmtime's linker gives a component that imports 1.0.0
//! the host's newer 1.x.
//!
//! Two sets of bindings share every type: the top level is for async stores, where the
//! functions that may block on the filesystem for long (staging, commit, abort, recovery, and
//! dropping a stage) are `async` and run on a blocking thread; [`sync`] is for synchronous
//! stores, where they run inline.
//!
//! To link one interface alone, call its `add_to_linker` with [`HasStagingLock`](crate::HasStagingLock):
//! `locks::add_to_linker::<T, HasStagingLock>(linker, T::staging_lock)`.
//!
//! This file holds the generated code only; how its types convert into and from the native
//! core's, and between the bindings, is in `convert.rs`.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        inline: "
            package stagelock:host;
            world host {
                include stagelock:staging/imports@1.0.1;
                include stagelock:staging/imports@0.2.0;
                include stagelock:staging/imports@0.1.0;
            }
        ",
        path: ["wit", "wit-compat/0.2.0", "wit-compat/0.1.0"],
        world: "stagelock:host/host",
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "stagelock:staging/locks.staging-lock": ::stagelock::StagingLock,
            "stagelock:staging/locks.lock-request": crate::request::LockRequest,
            "stagelock:staging/staging.staging-area": ::stagelock::StagingArea,
            "stagelock:staging/staging.stage": ::stagelock::Stage,
        },
        imports: {
            "stagelock:staging/staging.[method]staging-area.stage": async | trappable,
            "stagelock:staging/staging.[method]staging-area.recover-stale": async | trappable,
            "stagelock:staging/staging.[static]stage.commit": async | trappable,
            "stagelock:staging/staging.[static]stage.commit-with": async | trappable,
            "stagelock:staging/staging.[static]stage.abort": async | trappable,
            "stagelock:staging/staging.[drop]stage": async | trappable,
            default: trappable,
        },
        trappable_error_type: {
            "stagelock:staging/locks@1.0.1.error-code" => crate::error::HostError,
            "stagelock:staging/staging@1.0.1.commit-error" => crate::error::CommitFailure,
            "stagelock:staging/locks@0.2.0.error" => crate::error::HostError,
            "stagelock:staging/staging@0.2.0.commit-error" => crate::error::CommitFailure,
            "stagelock:staging/locks@0.1.0.error" => crate::error::HostError,
            "stagelock:staging/staging@0.1.0.commit-error" => crate::error::CommitFailure,
        },
        require_store_data_send: true,
    });
}

pub use generated::stagelock::staging1_0_1::{locks, staging};

/// The interfaces of `stagelock:staging@0.2.0`, for components built against it: the same
/// functions on the same resources; its errors are records with a message, and
/// `lock-request.get` has no nested result.
pub mod v0_2 {
    pub use super::generated::stagelock::staging0_2_0::{locks, staging};

    /// Their `staging` for synchronous stores.
    pub mod sync {
        pub use crate::bindings::sync::generated::stagelock::staging0_2_0::staging;
    }
}

/// The interfaces of `stagelock:staging@0.1.0`, for components built against it: the same
/// functions on the same resources (a 0.1.0 component and a 0.2.0 one see each other's locks
/// as they would their own); only the records are their own types (0.2.0's). 0.2.0 added
/// `locks.request-lock`.
pub mod v0_1 {
    pub use super::generated::stagelock::staging0_1_0::{locks, staging};

    /// Their `staging` for synchronous stores.
    pub mod sync {
        pub use crate::bindings::sync::generated::stagelock::staging0_1_0::staging;
    }
}

/// Bindings for synchronous stores: a `staging` interface whose functions all run inline, with
/// the same resources (its records convert from and into the async bindings' with `From`).
/// `locks` never blocks and is shared with the async bindings.
pub mod sync {
    #[allow(missing_docs)]
    pub(super) mod generated {
        wasmtime::component::bindgen!({
            inline: "
                package stagelock:host;
                world host {
                    include stagelock:staging/imports@1.0.1;
                    include stagelock:staging/imports@0.2.0;
                    include stagelock:staging/imports@0.1.0;
                }
            ",
            path: ["wit", "wit-compat/0.2.0", "wit-compat/0.1.0"],
            world: "stagelock:host/host",
            with: {
                "wasi": wasmtime_wasi::p2::bindings,
                "stagelock:staging/locks@1.0.1": crate::bindings::locks,
                "stagelock:staging/locks@0.2.0": crate::bindings::v0_2::locks,
                "stagelock:staging/locks@0.1.0": crate::bindings::v0_1::locks,
                "stagelock:staging/staging.staging-area": ::stagelock::StagingArea,
                "stagelock:staging/staging.stage": ::stagelock::Stage,
            },
            imports: { default: trappable },
            trappable_error_type: {
                "stagelock:staging/locks@1.0.1.error-code" => crate::error::HostError,
                "stagelock:staging/staging@1.0.1.commit-error" => crate::error::CommitFailure,
                "stagelock:staging/locks@0.2.0.error" => crate::error::HostError,
                "stagelock:staging/staging@0.2.0.commit-error" => crate::error::CommitFailure,
                "stagelock:staging/locks@0.1.0.error" => crate::error::HostError,
                "stagelock:staging/staging@0.1.0.commit-error" => crate::error::CommitFailure,
            },
            require_store_data_send: true,
        });
    }

    pub use generated::stagelock::staging1_0_1::staging;
}
