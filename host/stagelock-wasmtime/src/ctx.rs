//! Per-store state ([`StagingLockCtx`]), how the host functions reach it from the store
//! ([`StagingLockView`], [`StagingLockCtxView`], [`HasStagingLock`]), and the checks they all
//! make with it: the cap on held locks, the grant behind a guest's directory, the count.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use stagelock::{LockDir, Op};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::filesystem::Descriptor;

use crate::error::HostError;

/// The default cap on locks one store may hold at once.
pub const DEFAULT_MAX_HELD: usize = 1024;

/// Per-store staging-lock state: the cap on held locks, and how many are held.
///
/// It also keeps the directory the guest last took a lock in open (one descriptor, until the
/// guest locks in another directory or the store is dropped), so that locking in one directory
/// over and over asks its filesystem what it guarantees only once.
#[derive(Debug)]
pub struct StagingLockCtx {
    pub(crate) max_held: usize,
    pub(crate) held: usize,
    /// The last guest directory locked in (the descriptor's handle), as a [`LockDir`].
    pub(crate) last_dir: Option<(Arc<File>, LockDir)>,
}

impl Default for StagingLockCtx {
    fn default() -> Self {
        Self::new()
    }
}

impl StagingLockCtx {
    /// A context with the default cap of [`DEFAULT_MAX_HELD`] locks.
    pub fn new() -> Self {
        StagingLockCtx {
            max_held: DEFAULT_MAX_HELD,
            held: 0,
            last_dir: None,
        }
    }

    /// Sets how many locks (and stages) the store may hold at once; further requests get
    /// `limit-reached`. Each held lock costs the host one file descriptor.
    pub fn set_max_held(&mut self, max: usize) -> &mut Self {
        self.max_held = max;
        self
    }

    /// The cap on locks held at once.
    pub fn max_held(&self) -> usize {
        self.max_held
    }

    /// How many locks and stages the guest holds right now (handles not yet dropped, unlocked,
    /// committed or aborted).
    pub fn held(&self) -> usize {
        self.held
    }
}

/// What the host functions need from the store: the lock state and the store's resource table
/// (the same table WASI keeps descriptors in).
pub struct StagingLockCtxView<'a> {
    /// The store's staging-lock state.
    pub ctx: &'a mut StagingLockCtx,
    /// The store's resource table, shared with WASI.
    pub table: &'a mut ResourceTable,
}

/// Implemented by store data that lends staging locks to guests; [`add_to_linker_sync`]
/// and [`add_to_linker_async`] use it to find the state.
///
/// [`add_to_linker_sync`]: crate::add_to_linker_sync
/// [`add_to_linker_async`]: crate::add_to_linker_async
pub trait StagingLockView: Send {
    /// Borrows the lock state and the resource table.
    fn staging_lock(&mut self) -> StagingLockCtxView<'_>;
}

/// The [`HasData`] marker of this crate's host functions, for linking one interface alone
/// with the generated `add_to_linker` of [`bindings::locks`](crate::bindings::locks),
/// [`bindings::staging`](crate::bindings::staging) or
/// [`bindings::sync::staging`](crate::bindings::sync::staging).
pub struct HasStagingLock;

impl HasData for HasStagingLock {
    type Data<'a> = StagingLockCtxView<'a>;
}

/// The checks and the bookkeeping every host function shares.
impl StagingLockCtxView<'_> {
    /// Refuses a new lock when the store already holds its cap.
    pub(crate) fn check_limit(&self, op: Op, path: &Path) -> Result<(), HostError> {
        if self.ctx.held < self.ctx.max_held {
            return Ok(());
        }
        Err(HostError::limit_reached(op, path, self.ctx.held))
    }

    /// The directory behind a guest's descriptor, if the guest may change things beneath it
    /// (the rule wasi:filesystem applies to its own mutations: a read-write grant). A bad
    /// handle traps.
    pub(crate) fn writable_dir(
        &self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> Result<Arc<File>, HostError> {
        match self.table.get(dir)? {
            Descriptor::Dir(dir) if dir.perms.write_not_permitted() => {
                Err(HostError::read_only(op, path))
            }
            Descriptor::Dir(dir) => Ok(Arc::clone(&dir.dir)),
            Descriptor::File(_) => Err(HostError::not_a_directory(op, path)),
        }
    }

    /// [`writable_dir`](Self::writable_dir) as a [`LockDir`]. The last one is kept, so a guest
    /// locking in one directory pays for making it (an `fstatfs`) once.
    pub(crate) fn lock_dir(
        &mut self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> Result<LockDir, HostError> {
        let file = self.writable_dir(dir, op, path)?;
        // The cache holds the handle, so its allocation cannot be reused by another one.
        if let Some((last, locks)) = &self.ctx.last_dir
            && Arc::ptr_eq(last, &file)
        {
            return Ok(locks.clone());
        }
        let locks = LockDir::from_shared(Arc::clone(&file));
        self.ctx.last_dir = Some((file, locks.clone()));
        Ok(locks)
    }

    /// Moves something that holds a lock (a lock, a stage) into the table and counts it.
    pub(crate) fn hold<T: Send + 'static>(&mut self, holder: T) -> wasmtime::Result<Resource<T>> {
        let handle = self.table.push(holder)?;
        self.ctx.held += 1;
        Ok(handle)
    }

    /// Takes something that holds a lock out of the table and uncounts it.
    pub(crate) fn unhold<T: 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        let holder = self.table.delete(handle)?;
        self.ctx.held -= 1;
        Ok(holder)
    }
}
