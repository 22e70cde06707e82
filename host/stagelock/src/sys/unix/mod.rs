//! The Unix family: Linux and Android with open-file-description locks, other Unix systems
//! (macOS, the BSDs) with classic `fcntl` locks; the table in the parent module lists the files.

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(stagelock_posix_fallback)
))]
#[path = "ofd.rs"]
mod backend;

#[cfg(any(
    not(any(target_os = "linux", target_os = "android")),
    stagelock_posix_fallback
))]
#[path = "posix.rs"]
mod backend;

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(stagelock_posix_fallback)
))]
pub(crate) mod events;

mod beneath;
mod errno;
mod fcntl;
mod fs;
mod mounts;
mod proc;
mod rename;
mod signals;
mod sync;

#[cfg(test)]
pub(crate) use backend::drop_lock_keeping_file;
pub(crate) use backend::{LockedFile, held_here, locked_by_other, probe, try_lock};
#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(stagelock_posix_fallback)
))]
pub(crate) use backend::{kept_locked, try_lock_keeping, try_lock_or_keep};
pub(crate) use beneath::again_if_escaped;
pub(crate) use errno::{already_exists, denial, in_use, kind_of, not_a_file, raced_open};
pub(crate) use fcntl::set_inheritable;
#[cfg(any(test, feature = "faults"))]
pub(crate) use fs::open_following;
pub(crate) use fs::{
    HAS_HOST_FORMS, SEPARATORS, delete_held, host_form, is_local_filesystem, on_local_filesystem,
    open_beneath, open_beneath_to_look, remove_all, remove_beneath, remove_dir_tree,
    remove_emptied_dir, remove_empty_dir, single_name, stat_at, stat_fd,
};
pub(crate) use mounts::mount_of;
pub(crate) use proc::{cmdline, holders, lock_table_id};
pub(crate) use rename::{
    kind_mismatch, link_exclusive, not_empty, rename, rename_flags_unsupported, rename_plain,
    reserve_dir,
};
pub use signals::{InterruptsIgnored, ignore_interrupts};
pub(crate) use sync::{fsync_dir, sync_tree};
