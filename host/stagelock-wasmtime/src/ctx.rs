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
#[derive(Debug)]
pub struct StagingLockCtx {
    pub(crate) max_held: usize,
    pub(crate) held: usize,
    pub(crate) refuse_local_only: bool,
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
            refuse_local_only: false,
        }
    }

    /// Refuses locks and stages in directories whose filesystem keeps its locks on this host
    /// while other hosts reach its files ([`LockReach::LocalOnly`](stagelock::LockReach): NFS
    /// mounted `nolock` or `local_lock=posix|all`, SMB `nobrl`, sshfs, rclone, see
    /// [`LockDir::local_only`]): the guest gets `not-permitted` (`access-denied` before WIT
    /// 1.0.0), its lock never taken. Off by default: whether host-only locks will do is the
    /// embedder's to know (a build cache only this host writes is fine on `nolock` NFS).
    /// (`stagelock run` with `STAGELOCK_LOCAL_ONLY=refuse` refuses such grants before the
    /// component starts.)
    ///
    /// Each mount is looked at once per process (its mount table entry, and on network
    /// filesystems over FUSE a probe lock file created and deleted in the directory).
    pub fn set_refuse_local_only(&mut self, refuse: bool) -> &mut Self {
        self.refuse_local_only = refuse;
        self
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
            Descriptor::Dir(dir) => {
                if self.ctx.refuse_local_only {
                    // Not looked at (`Err`): the operation itself reports what is wrong.
                    let locks = LockDir::from_shared(Arc::clone(&dir.dir));
                    if let Ok(Some(fs)) = locks.local_only() {
                        return Err(HostError::local_only(op, path, &fs.reason));
                    }
                }
                Ok(Arc::clone(&dir.dir))
            }
            Descriptor::File(_) => Err(HostError::not_a_directory(op, path)),
        }
    }

    /// [`writable_dir`](Self::writable_dir) as a [`LockDir`], sharing the descriptor's handle
    /// (nothing is duplicated, and nothing is asked of the filesystem).
    pub(crate) fn lock_dir(
        &self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> Result<LockDir, HostError> {
        Ok(LockDir::from_shared(self.writable_dir(dir, op, path)?))
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

#[cfg(test)]
mod tests {
    use wasmtime_wasi::filesystem::{Dir, File as WasiFile};
    use wasmtime_wasi::{FsPerms, OpenMode};

    use super::*;
    // The 0.2.0 records carry the message too, so the refusals' words are checked through them.
    use crate::bindings::v0_2::locks::ErrorCode;
    use crate::convert::legacy_error as guest_error;

    /// A descriptor for this crate's directory, granted with `perms`.
    fn dir(table: &mut ResourceTable, perms: FsPerms) -> Resource<Descriptor> {
        table.push(grant(perms)).unwrap()
    }

    /// A 0.2.0 guest's error code and message for `err`; panics on a trap.
    fn guest(err: HostError) -> (ErrorCode, String) {
        let err = guest_error(err).unwrap();
        (err.code, err.message)
    }

    #[test]
    fn a_new_context_holds_nothing_and_caps_at_the_default() {
        assert_eq!(DEFAULT_MAX_HELD, 1024);
        for ctx in [StagingLockCtx::new(), StagingLockCtx::default()] {
            assert_eq!(ctx.max_held(), DEFAULT_MAX_HELD);
            assert_eq!(ctx.held(), 0);
        }
    }

    #[test]
    fn set_max_held_chains_and_sets_the_cap() {
        let mut ctx = StagingLockCtx::new();
        assert_eq!(ctx.set_max_held(2).set_max_held(3).max_held(), 3);
    }

    #[test]
    fn the_cap_refuses_with_limit_reached_naming_the_operation_and_path() {
        let (mut ctx, mut table) = (StagingLockCtx::new(), ResourceTable::new());
        ctx.set_max_held(2);
        let mut view = StagingLockCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        let (op, path) = (Op::CreateAndLock, Path::new("a.lock"));
        let first = view.hold(1u32).unwrap();
        assert!(view.check_limit(op, path).is_ok());
        view.hold(2u32).unwrap();
        assert_eq!(view.ctx.held(), 2);
        let (code, message) = guest(view.check_limit(op, path).unwrap_err());
        assert_eq!(code, ErrorCode::LimitReached);
        assert_eq!(
            message,
            "create-and-lock \"a.lock\": this instance already holds 2 locks, the host's limit"
        );
        // Releasing one makes room again.
        assert_eq!(view.unhold(first).unwrap(), 1);
        assert_eq!(view.ctx.held(), 1);
        assert!(view.check_limit(op, path).is_ok());
    }

    #[test]
    fn a_cap_of_zero_refuses_the_first_lock() {
        let (mut ctx, mut table) = (StagingLockCtx::new(), ResourceTable::new());
        ctx.set_max_held(0);
        let view = StagingLockCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        let err = view
            .check_limit(Op::TryLockPath, Path::new("x"))
            .unwrap_err();
        assert_eq!(guest(err).0, ErrorCode::LimitReached);
    }

    /// `writable_dir` of `descriptor` in a fresh store, for `commit "dest"`.
    fn writable(descriptor: Descriptor) -> Result<Arc<File>, HostError> {
        let (mut ctx, mut table) = (StagingLockCtx::new(), ResourceTable::new());
        let handle = table.push(descriptor).unwrap();
        let view = StagingLockCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        view.writable_dir(&handle, Op::Commit, Path::new("dest"))
    }

    fn grant(perms: FsPerms) -> Descriptor {
        let file = File::open(env!("CARGO_MANIFEST_DIR")).unwrap();
        Descriptor::Dir(Dir::new(
            file,
            perms,
            OpenMode::READ | OpenMode::WRITE,
            false,
        ))
    }

    #[test]
    fn a_read_write_grant_lends_its_directory() {
        assert!(writable(grant(FsPerms::ReadWrite)).is_ok());
    }

    #[test]
    fn a_read_only_grant_is_refused_with_access_denied() {
        let err = writable(grant(FsPerms::ReadOnly)).unwrap_err();
        let why = "commit \"dest\": the directory was granted read-only";
        assert_eq!(guest(err), (ErrorCode::AccessDenied, why.to_owned()));
    }

    #[test]
    fn a_file_descriptor_is_refused_with_not_a_directory() {
        let file = File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
        let mode = OpenMode::READ | OpenMode::WRITE;
        let file = WasiFile::new(file, FsPerms::ReadWrite, mode, false);
        let err = writable(Descriptor::File(file)).unwrap_err();
        let why = "commit \"dest\": the descriptor is a file, not a directory";
        assert_eq!(guest(err), (ErrorCode::NotADirectory, why.to_owned()));
    }

    /// `writable_dir` of a read-write grant of `path`, the store refusing local-only
    /// directories.
    fn writable_refusing_local_only(path: &Path) -> Result<Arc<File>, HostError> {
        let (mut ctx, mut table) = (StagingLockCtx::new(), ResourceTable::new());
        ctx.set_refuse_local_only(true);
        let mode = OpenMode::READ | OpenMode::WRITE;
        let dir = Dir::new(File::open(path).unwrap(), FsPerms::ReadWrite, mode, false);
        let handle = table.push(Descriptor::Dir(dir)).unwrap();
        let view = StagingLockCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        view.writable_dir(&handle, Op::TryLockPath, Path::new("x.lock"))
    }

    #[test]
    fn refusing_local_only_directories_still_lends_a_local_one() {
        assert!(writable_refusing_local_only(Path::new(env!("CARGO_MANIFEST_DIR"))).is_ok());
    }

    /// A directory whose locks stay on this host (`STAGELOCK_LOCAL_ONLY_DIR`, which
    /// `scripts/filesystems.sh` mounts with rclone) is refused with `not-permitted`, the
    /// message naming the operation, the path and the mount's reason.
    #[test]
    fn a_local_only_directory_is_refused_with_not_permitted() {
        let Some(dir) = std::env::var_os("STAGELOCK_LOCAL_ONLY_DIR") else {
            println!("skipped: scripts/filesystems.sh sets STAGELOCK_LOCAL_ONLY_DIR");
            return;
        };
        let refused = || writable_refusing_local_only(Path::new(&dir)).unwrap_err();
        let v1 = crate::convert::guest_error(refused()).unwrap();
        assert!(
            matches!(v1, crate::bindings::locks::ErrorCode::NotPermitted),
            "{v1:?}"
        );
        let (code, message) = guest(refused());
        assert_eq!(code, ErrorCode::AccessDenied, "{message}");
        assert!(
            message.starts_with("try-lock-path \"x.lock\": ") && message.contains("this host"),
            "{message}"
        );
    }

    #[test]
    fn a_stale_handle_traps() {
        let (mut ctx, mut table) = (StagingLockCtx::new(), ResourceTable::new());
        let rw = dir(&mut table, FsPerms::ReadWrite);
        let stale = Resource::<Descriptor>::new_borrow(rw.rep());
        table.delete(rw).unwrap();
        let view = StagingLockCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        let err = view
            .writable_dir(&stale, Op::Stage, Path::new("."))
            .unwrap_err();
        assert!(!err.is_guest_error());
        assert!(guest_error(err).is_err());
    }
}
