//! The host bindings of the `stagelock:staging` WIT package (shipped in this crate's `wit/`).
//!
//! WASI's types come from `wasmtime_wasi`, so a guest's `borrow<descriptor>` arrives as a handle
//! to the very `Descriptor` that wasi:filesystem keeps in the store's `ResourceTable`. The WIT
//! resources are the native core's types ([`stagelock::StagingLock`], [`stagelock::StagingArea`],
//! [`stagelock::Stage`]). Guest-visible errors are [`HostError`](crate::HostError) and
//! [`CommitFailure`](crate::CommitFailure) (`trappable_error_type`): a bad handle traps,
//! everything else becomes an `error` the guest can handle.
//!
//! Two sets of bindings share every type: the top level is for async stores, where the
//! functions that may block on the filesystem for long (staging, commit, abort, recovery, and
//! dropping a stage) are `async` and run on a blocking thread; [`sync`] is for synchronous
//! stores, where they run inline.
//!
//! To link one interface alone, call its `add_to_linker` with [`HasStagingLock`](crate::HasStagingLock):
//! `locks::add_to_linker::<T, HasStagingLock>(linker, T::staging_lock)`.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        world: "stagelock:staging/imports",
        path: "wit",
        with: {
            "wasi": wasmtime_wasi::p2::bindings,
            "stagelock:staging/locks.staging-lock": ::stagelock::StagingLock,
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
            "stagelock:staging/locks.error" => crate::HostError,
            "stagelock:staging/staging.commit-error" => crate::CommitFailure,
        },
        require_store_data_send: true,
    });
}

pub use generated::stagelock::staging::{locks, staging};

/// Bindings for synchronous stores: a `staging` interface whose functions all run inline, with
/// the same resources (its records convert from the async bindings' with `From`). `locks`
/// never blocks and is shared with the async bindings.
pub mod sync {
    #[allow(missing_docs)]
    mod generated {
        wasmtime::component::bindgen!({
            world: "stagelock:staging/imports",
            path: "wit",
            with: {
                "wasi": wasmtime_wasi::p2::bindings,
                "stagelock:staging/locks": crate::bindings::locks,
                "stagelock:staging/staging.staging-area": ::stagelock::StagingArea,
                "stagelock:staging/staging.stage": ::stagelock::Stage,
            },
            imports: { default: trappable },
            trappable_error_type: {
                "stagelock:staging/locks.error" => crate::HostError,
                "stagelock:staging/staging.commit-error" => crate::CommitFailure,
            },
            require_store_data_send: true,
        });
    }

    pub use generated::stagelock::staging::staging;
}

/// The sync bindings' records are their own types; these convert the async bindings' ones.
mod convert {
    use super::{staging as a, sync::staging as s};

    impl From<s::Layout> for a::Layout {
        fn from(layout: s::Layout) -> Self {
            match layout {
                s::Layout::Pairs => a::Layout::Pairs,
                s::Layout::PerDirectory => a::Layout::PerDirectory,
            }
        }
    }

    impl From<s::CommitOptions> for a::CommitOptions {
        fn from(options: s::CommitOptions) -> Self {
            a::CommitOptions {
                replace: options.replace,
                durability: match options.durability {
                    s::Durability::Full => a::Durability::Full,
                    s::Durability::None => a::Durability::None,
                },
            }
        }
    }

    impl From<a::SkipReason> for s::SkipReason {
        fn from(reason: a::SkipReason) -> Self {
            match reason {
                a::SkipReason::Held => s::SkipReason::Held,
                a::SkipReason::Vanished => s::SkipReason::Vanished,
                a::SkipReason::Failed => s::SkipReason::Failed,
                a::SkipReason::NotAStage => s::SkipReason::NotAStage,
            }
        }
    }

    impl From<a::Report> for s::Report {
        fn from(report: a::Report) -> Self {
            let removed = report.removed.into_iter().map(|r| s::Recovered {
                id: r.id,
                had_lock: r.had_lock,
                had_resource: r.had_resource,
            });
            let skipped = report.skipped.into_iter().map(|k| s::Skipped {
                id: k.id,
                reason: k.reason.into(),
                message: k.message,
            });
            s::Report {
                dry_run: report.dry_run,
                removed: removed.collect(),
                skipped: skipped.collect(),
            }
        }
    }

    impl From<a::CommitError> for s::CommitError {
        fn from(err: a::CommitError) -> Self {
            s::CommitError {
                error: err.error,
                stage: err.stage,
            }
        }
    }
}
