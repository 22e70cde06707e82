//! What both OS families' code hands the rest of the crate: file identities and kinds, how a
//! lock file is opened, what a look at a lock saw, how a rename treats its destination. Plain
//! data, no system calls.

/// A file's identity: on Unix device and inode (`st_dev`, `st_ino`); on Windows the volume's
/// serial number and the file's 128-bit ID on it (`FILE_ID_INFO`; ReFS does not promise
/// 64-bit file indexes unique), or, where a filesystem does not say it, the 64-bit file index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: Ino,
}

/// A file's number on its device: `st_ino` on Unix, the 128-bit file ID on Windows.
#[cfg(unix)]
pub(crate) type Ino = u64;
/// A file's number on its device: `st_ino` on Unix, the 128-bit file ID on Windows.
#[cfg(windows)]
pub(crate) type Ino = u128;

/// A path form the host's OS gives another meaning than names beneath the directory it is
/// resolved in (a drive, a device, a data stream, on Windows); never made on Unix, where a
/// backslash and a colon are ordinary characters of a name. The text says which form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(unix, allow(dead_code))]
pub(crate) enum HostForm {
    /// It names something outside the directory: refused as an escape.
    Escape(&'static str),
    /// It names no file the directory can hold as given: refused as invalid input.
    Invalid(&'static str),
}

/// What kind of file a descriptor or path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    #[cfg_attr(windows, allow(dead_code))]
    Fifo,
    #[cfg_attr(windows, allow(dead_code))]
    Socket,
    Device,
    #[cfg_attr(windows, allow(dead_code))]
    Other,
}

impl FileKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FileKind::Regular => "regular file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symbolic link",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
            FileKind::Device => "device",
            FileKind::Other => "special file",
        }
    }
}

/// What `stat_fd` tells about an open file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileStat {
    pub(crate) id: FileId,
    pub(crate) kind: FileKind,
    /// How many names the file has (0: it was deleted; on Windows also while a delete is
    /// pending, the name lingering until the last handle closes).
    pub(crate) nlink: u64,
    /// The mount the file was opened through, by an ID the kernel never gives another mount
    /// (`STATX_MNT_ID_UNIQUE`, Linux 6.8+); `None` where the kernel does not say.
    #[cfg_attr(windows, allow(dead_code))] // Windows gives no mount IDs
    pub(crate) mount: Option<u64>,
}

/// How `open_beneath` opens a lock file: always read-write, never following a final symlink,
/// never blocking (on a FIFO), not inherited by children.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Create {
    /// `O_CREAT | O_EXCL` (`CREATE_NEW`): a fresh file.
    New,
    /// `O_CREAT` (`OPEN_ALWAYS`): open or create.
    IfMissing,
    /// Open an existing file only.
    No,
}

/// What a look at a file's locks (`probe`) saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No conflicting lock.
    Free,
    /// A lock of this very process that the OS cannot show (the fallback's registry); never
    /// seen with OFD or Windows locks, whose holders in this process are reported like any
    /// other.
    #[allow(dead_code)] // made by the POSIX fallback only
    HeldHere,
    /// Another holder's lock, with the `l_pid` the OS reported (`-1` for an OFD lock).
    #[cfg_attr(windows, allow(dead_code))]
    Held(i32),
    /// Another handle's lock (Windows, which does not say whose).
    #[cfg_attr(unix, allow(dead_code))]
    HeldByHandle,
}

/// How `rename` treats an existing destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameMode {
    /// Fail with "already exists" if the destination exists (atomically on Linux and Windows).
    NoReplace,
    /// Swap source and destination atomically (Linux); both must exist.
    Exchange,
}

/// A lock on a file found in the OS's lock table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcHolder {
    /// An OFD lock (else a classic POSIX one).
    pub(crate) ofd: bool,
    /// The process holding it, when known. An OFD lock shared by several processes (a
    /// descriptor inherited by a child) appears once per process.
    pub(crate) pid: Option<u32>,
}

/// A mount as the kernel lists it (Linux's `/proc/self/mountinfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// Where it is mounted.
    pub(crate) mount_point: std::path::PathBuf,
    /// The filesystem type (`ext4`, `nfs4`, `fuse.juicefs`).
    pub(crate) fs_type: String,
    /// What is mounted (`/dev/vda`, `server:/export`).
    pub(crate) source: String,
    /// The mount's options, then the superblock's (`rw`, `relatime`, `local_lock=none`).
    pub(crate) options: Vec<String>,
    /// The superblock's device (major, minor): what `/proc/locks` names the files of this
    /// mount by. Not always a file's `st_dev`: Btrfs gives each subvolume a device of its own.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) dev: (u32, u32),
}

/// What an OS error is, where its code says more than [`std::io::ErrorKind`] does: the
/// platform's answer, which `error.rs` maps onto the crate's `ErrorKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OsErrorKind {
    /// The path names something other than a regular file (a directory, a symbolic link not
    /// followed, a device).
    NotAFile,
    /// Out of descriptors or handles.
    LimitReached,
    /// Refused by the OS: read-only, not permitted.
    PermissionDenied,
    /// A malformed name (too long, invalid).
    InvalidInput,
    /// A rename across filesystems.
    CrossDevice,
    /// Gone: deleted through another client of a network filesystem.
    #[cfg_attr(windows, allow(dead_code))] // Unix only (ESTALE)
    NotFound,
    /// Busy for now (on Windows: someone has the file open in a way that excludes ours).
    #[cfg_attr(unix, allow(dead_code))] // Windows only
    WouldBlock,
}

/// Why the OS denied access: the platform's answer, which `error.rs` maps onto the crate's
/// `Denial`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OsDenial {
    /// The caller lacks the rights.
    Access,
    /// The filesystem is read-only.
    ReadOnly,
    /// Not permitted on this file.
    NotPermitted,
}
