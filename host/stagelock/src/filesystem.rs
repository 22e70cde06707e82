//! What stagelock can promise on the filesystem a directory lives on: [`Filesystem`], from
//! [`LockDir::filesystem`] (and `stagelock doctor`).
//!
//! Locks are the filesystem's own. On a local filesystem the kernel enforces them for every
//! process of this host; on a network filesystem only its server can enforce them across
//! hosts, and some mounts keep them on the client (NFS mounted `nolock` or
//! `local_lock=posix|all`, SMB mounted `nobrl`): there two hosts can both "hold" one lock, and
//! nothing says so. This module says which case a mount is, from its type and options.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Op};
use crate::lock_dir::LockDir;
use crate::sys;

/// Whose locks a filesystem's locks are: how far a lock taken on it reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockReach {
    /// A local kernel filesystem (ext4, XFS, Btrfs, tmpfs, overlayfs, ...): the kernel enforces
    /// locks for every process of this host, and no other host mounts it. (A local filesystem
    /// that this host exports over NFS or SMB does not show here: the server's own clients are
    /// excluded by its lock manager, which uses the same kernel locks.)
    Local,
    /// A network or distributed filesystem whose locks reach its server (NFS with its lock
    /// manager, SMB with byte-range locks, JuiceFS, GlusterFS): they exclude across hosts.
    Server,
    /// A shared filesystem whose locks stay on this host (NFS `nolock` or
    /// `local_lock=posix|all`, SMB `nobrl`, 9p before 9P2000.L): two hosts can hold the same
    /// lock at once. Exclusion is assured between this host's processes only.
    LocalOnly,
    /// Nothing known: FUSE filesystems other than the ones above, virtiofs and 9p (whose
    /// locks reach the other side only if the daemon implements them), and any type this
    /// crate does not know.
    Unknown,
}

impl LockReach {
    /// Whether locks on such a filesystem are known to exclude every holder that can reach
    /// it ([`Local`](Self::Local) and [`Server`](Self::Server)).
    pub fn assured(self) -> bool {
        matches!(self, LockReach::Local | LockReach::Server)
    }

    /// One word: `local`, `server`, `local-only`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            LockReach::Local => "local",
            LockReach::Server => "server",
            LockReach::LocalOnly => "local-only",
            LockReach::Unknown => "unknown",
        }
    }
}

impl fmt::Display for LockReach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The filesystem a directory lives on, and what stagelock can promise there: see
/// [`LockDir::filesystem`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filesystem {
    /// The filesystem type as the kernel names it (`ext4`, `nfs4`, `fuse.juicefs`), or
    /// `unknown` where the platform lists no mounts (other than Linux).
    pub fs_type: String,
    /// What is mounted (`/dev/vda`, `server:/export`); empty where unknown.
    pub source: String,
    /// Where it is mounted; empty where unknown.
    pub mount_point: PathBuf,
    /// The mount's and the superblock's options (`rw`, `local_lock=none`).
    pub options: Vec<String>,
    /// How far a lock taken there reaches.
    pub locks: LockReach,
    /// Why: one sentence naming the type or option that decided [`locks`](Self::locks).
    pub reason: String,
    /// Whether it is a local kernel filesystem whose link counts stagelock trusts: there a
    /// lock file's one link proves it still has its name; elsewhere every lock re-checks its
    /// path by device and inode.
    pub trusted_link_counts: bool,
}

impl LockDir {
    /// The filesystem this directory lives on and how far its locks reach: for a program (or
    /// `stagelock doctor`) to refuse or warn before relying on locks that cannot exclude
    /// another host. Asks the kernel each call (one `statx`, one read of the mount table):
    /// not for a hot path.
    ///
    /// Where the mount table cannot tell (FUSE filesystems, virtiofs, 9p), a probe does: a lock
    /// file `.stagelock-probe-<N>` is created, locked and deleted again in this directory, and
    /// whether its lock shows in this host's lock table (`/proc/locks`) says whether the
    /// kernel took it for this host alone (the filesystem implements no locks) or the
    /// filesystem's own code did. A directory the probe cannot write in keeps the answer
    /// [`LockReach::Unknown`], with the reason. (Recovery never looks at such names; a probe
    /// cut short by a crash leaves its file.)
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Other`](crate::ErrorKind::Other) (or the OS error's kind) when the
    /// directory cannot be `stat`ed or the mount table (`/proc/self/mountinfo`) cannot be
    /// read; a platform without a mount table is not an error: the type is `unknown`.
    pub fn filesystem(&self) -> Result<Filesystem, Error> {
        self.filesystem_probing(probes_tell)
    }

    /// The filesystem, if it is known to keep its locks on this host while other hosts reach
    /// it ([`LockReach::LocalOnly`]): for a program that refuses or warns before relying on
    /// such locks (`stagelock` warns; see docs/filesystems.md). Cheaper than
    /// [`filesystem`](Self::filesystem), and without its side effects where they cannot change
    /// the answer: the probe runs only on network filesystems over FUSE (sshfs, rclone, s3fs,
    /// ...), virtiofs and 9p.
    ///
    /// The answer is kept by the mount's unique ID where the kernel gives one (Linux 6.8+), so
    /// each mount is looked at once per process; elsewhere every call looks.
    ///
    /// # Errors
    ///
    /// As [`filesystem`](Self::filesystem).
    pub fn local_only(&self) -> Result<Option<Filesystem>, Error> {
        let mount = sys::stat_fd(self.handle()).ok().and_then(|stat| stat.mount);
        let seen = || SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = mount.and_then(|m| seen().get(&m).cloned()) {
            return Ok(known);
        }
        let fs = self
            .filesystem_probing(|t| NETWORK_FUSE.contains(&t) || matches!(t, "virtiofs" | "9p"))?;
        let answer = (fs.locks == LockReach::LocalOnly).then_some(fs);
        if let Some(m) = mount {
            seen().insert(m, answer.clone());
        }
        Ok(answer)
    }

    /// [`filesystem`](Self::filesystem), probing the mounts of the types `probe_if` says.
    fn filesystem_probing(&self, probe_if: fn(&str) -> bool) -> Result<Filesystem, Error> {
        let dir = self.handle();
        let entry = sys::mount_of(dir).map_err(|e| Error::io(Op::Filesystem, "", e))?;
        let trusted_link_counts = sys::is_local_filesystem(dir);
        Ok(match entry {
            Some(m) => {
                let (mut locks, mut reason) = classify(&m.fs_type, &m.options);
                if locks == LockReach::Unknown && probe_if(&m.fs_type) {
                    (locks, reason) = refine(&m.fs_type, &reason, probe(self));
                }
                Filesystem {
                    fs_type: m.fs_type,
                    source: m.source,
                    mount_point: m.mount_point,
                    options: m.options,
                    locks,
                    reason,
                    trusted_link_counts,
                }
            }
            None => Filesystem {
                fs_type: "unknown".to_owned(),
                source: String::new(),
                mount_point: PathBuf::new(),
                options: Vec::new(),
                locks: if trusted_link_counts {
                    LockReach::Local
                } else {
                    LockReach::Unknown
                },
                reason: "this platform lists no mount table".to_owned(),
                trusted_link_counts,
            },
        })
    }
}

/// What [`LockDir::local_only`] found of each mount, by the mount's unique ID, which no other
/// mount ever gets.
type Seen = std::collections::HashMap<u64, Option<Filesystem>>;
static SEEN: std::sync::LazyLock<std::sync::Mutex<Seen>> =
    std::sync::LazyLock::new(Default::default);

/// Local kernel filesystems: the kernel enforces locks for every process of this host.
const LOCAL: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "bcachefs", "zfs", "tmpfs", "ramfs", "overlay",
    "jfs", "reiserfs", "nilfs2", "hfsplus", "vfat", "exfat", "ntfs3",
];

/// FUSE daemons known to send locks to their servers (checked across two mounts here).
const FUSE_WITH_SERVER_LOCKS: &[&str] = &["fuse.juicefs", "fuse.glusterfs"];

/// How far locks on a filesystem of type `fs_type` mounted with `options` reach, and why.
pub(crate) fn classify(fs_type: &str, options: &[String]) -> (LockReach, String) {
    let has = |o: &str| options.iter().any(|x| x == o);
    let value = |key: &str| {
        options
            .iter()
            .find_map(|x| x.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
    };
    let local_only = |why: String| (LockReach::LocalOnly, why);
    match fs_type {
        t if LOCAL.contains(&t) => (
            LockReach::Local,
            format!("{t} is a local kernel filesystem: this host's kernel enforces its locks"),
        ),
        "nfs" | "nfs4" => {
            if has("nolock") {
                return local_only(format!(
                    "{fs_type} mounted nolock: fcntl locks are taken on this client only"
                ));
            }
            match value("local_lock") {
                Some(l @ ("posix" | "all")) => local_only(format!(
                    "{fs_type} mounted local_lock={l}: fcntl locks are taken on this client only"
                )),
                _ => (
                    LockReach::Server,
                    format!("{fs_type}: fcntl locks go to the server's lock manager"),
                ),
            }
        }
        "cifs" | "smb3" => {
            if has("nobrl") {
                local_only(format!(
                    "{fs_type} mounted nobrl: byte-range locks are not sent to the server"
                ))
            } else {
                (
                    LockReach::Server,
                    format!("{fs_type}: byte-range locks go to the server"),
                )
            }
        }
        "9p" => match value("version") {
            Some(v @ ("9p2000" | "9p2000.u")) => local_only(format!(
                "9p version {v}: only 9P2000.L sends locks to the server"
            )),
            _ => (
                LockReach::Unknown,
                "9p (9P2000.L): locks reach the other side only if its server implements them"
                    .to_owned(),
            ),
        },
        "virtiofs" => (
            LockReach::Unknown,
            "virtiofs: locks reach the host only if its daemon implements them (virtiofsd --posix-lock)"
                .to_owned(),
        ),
        t if FUSE_WITH_SERVER_LOCKS.contains(&t) => (
            LockReach::Server,
            format!("{t}: its daemon sends locks to the volume's server"),
        ),
        t if t == "fuse" || t.starts_with("fuse.") || t == "fuseblk" => (
            LockReach::Unknown,
            format!(
                "{t}: a FUSE daemon that does not implement locks gets this host's kernel locks, one that does may or may not share them with other hosts"
            ),
        ),
        t => (
            LockReach::Unknown,
            format!("{t}: a filesystem type stagelock does not know"),
        ),
    }
}

/// Network filesystems on FUSE: other hosts reach the storage beneath them.
const NETWORK_FUSE: &[&str] = &[
    "fuse.sshfs",
    "fuse.rclone",
    "fuse.s3fs",
    "fuse.gcsfuse",
    "fuse.goofys",
    "fuse.mountpoint-s3",
    "fuse.blobfuse2",
];

/// Whether a probe lock can tell more about a mount of `fs_type` than its type and options.
fn probes_tell(fs_type: &str) -> bool {
    matches!(fs_type, "fuse" | "fuseblk" | "virtiofs" | "9p") || fs_type.starts_with("fuse.")
}

/// Who took a probe's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probed {
    /// This host's kernel: the lock is in its lock table. The filesystem implements no locks
    /// (a FUSE daemon without them, 9p or virtiofs without lock support), so the kernel
    /// takes them as for a local file, for this host's processes alone.
    KernelTable,
    /// The filesystem's own code (a FUSE daemon that implements locks, a 9P2000.L server,
    /// virtiofsd with `--posix-lock`): the lock is not in this host's table.
    Filesystem,
}

/// Takes and releases a probe lock in `dir` and looks for it in this host's lock table.
fn probe(dir: &LockDir) -> Result<Probed, String> {
    let (lock, _name) = dir
        .create_and_lock(".stagelock-probe-")
        .map_err(|e| e.to_string())?;
    let table = sys::stat_fd(lock.file())
        .map(|stat| sys::holders(sys::lock_table_id(lock.file(), stat.id)));
    let _ = lock.unlock_and_delete();
    match table {
        Ok(Some(holders)) if holders.is_empty() => Ok(Probed::Filesystem),
        Ok(Some(_)) => Ok(Probed::KernelTable),
        Ok(None) => Err("this host's lock table cannot be read".to_owned()),
        Err(e) => Err(format!("looking at the probe's lock file: {e}")),
    }
}

/// What a probe says of a mount of `fs_type` that its type and options left unknown
/// (`unknown_why`), and why.
pub(crate) fn refine(
    fs_type: &str,
    unknown_why: &str,
    probed: Result<Probed, String>,
) -> (LockReach, String) {
    let shared = NETWORK_FUSE.contains(&fs_type) || matches!(fs_type, "virtiofs" | "9p");
    match probed {
        Ok(Probed::KernelTable) if shared => (
            LockReach::LocalOnly,
            format!(
                "{fs_type}: a probe's lock landed in this host's lock table, so it does not \
                 send locks on: they exclude this host's processes only, not the other hosts \
                 that reach its storage"
            ),
        ),
        Ok(Probed::KernelTable) => (
            LockReach::Unknown,
            format!(
                "{fs_type}: a probe's lock landed in this host's lock table (its daemon \
                 implements no locks): they exclude this host's processes only, enough if no \
                 other host reaches the storage beneath it"
            ),
        ),
        Ok(Probed::Filesystem) if matches!(fs_type, "virtiofs" | "9p") => (
            LockReach::Server,
            format!(
                "{fs_type}: a probe's lock went to its server, which takes it on the host's \
                 file"
            ),
        ),
        Ok(Probed::Filesystem) => (
            LockReach::Unknown,
            format!(
                "{fs_type}: a probe's lock went to its daemon, which implements locks: how \
                 far they reach is the daemon's (JuiceFS and GlusterFS send them to their \
                 servers)"
            ),
        ),
        Err(why) => (
            LockReach::Unknown,
            format!("{unknown_why} (no probe: {why})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (filesystem type, options from a real mountinfo line, expected reach).
    const SAMPLES: &[(&str, &str, LockReach)] = &[
        ("ext4", "rw,relatime,errors=remount-ro", LockReach::Local),
        ("xfs", "rw,relatime,attr2,inode64", LockReach::Local),
        (
            "btrfs",
            "rw,relatime,space_cache=v2,subvolid=5",
            LockReach::Local,
        ),
        ("tmpfs", "rw,nosuid,nodev,size=1024k", LockReach::Local),
        (
            "overlay",
            "rw,relatime,lowerdir=/l,upperdir=/u,workdir=/w",
            LockReach::Local,
        ),
        // NFS v3: the kernel shows nolock as local_lock=all; with the lock manager, none.
        (
            "nfs",
            "rw,vers=3,proto=tcp,local_lock=none,addr=10.0.0.1",
            LockReach::Server,
        ),
        (
            "nfs",
            "rw,vers=3,nolock,proto=tcp,local_lock=all",
            LockReach::LocalOnly,
        ),
        (
            "nfs",
            "rw,vers=3,proto=tcp,local_lock=posix",
            LockReach::LocalOnly,
        ),
        // local_lock=flock leaves fcntl (and OFD) locks to the server.
        (
            "nfs",
            "rw,vers=3,proto=tcp,local_lock=flock",
            LockReach::Server,
        ),
        (
            "nfs4",
            "rw,vers=4.2,proto=tcp,local_lock=none",
            LockReach::Server,
        ),
        (
            "nfs4",
            "rw,vers=4.1,proto=tcp,local_lock=all",
            LockReach::LocalOnly,
        ),
        (
            "cifs",
            "rw,vers=3.1.1,cache=strict,nobrl,soft",
            LockReach::LocalOnly,
        ),
        ("cifs", "rw,vers=3.1.1,cache=strict,soft", LockReach::Server),
        ("smb3", "rw,nobrl", LockReach::LocalOnly),
        ("9p", "rw,trans=virtio,version=9p2000.L", LockReach::Unknown),
        (
            "9p",
            "rw,trans=virtio,version=9p2000.u",
            LockReach::LocalOnly,
        ),
        ("virtiofs", "rw,relatime", LockReach::Unknown),
        (
            "fuse.juicefs",
            "rw,relatime,user_id=0,allow_other",
            LockReach::Server,
        ),
        ("fuse.glusterfs", "rw,relatime,user_id=0", LockReach::Server),
        (
            "fuse.bindfs",
            "rw,nosuid,nodev,user_id=0",
            LockReach::Unknown,
        ),
        ("fuse.sshfs", "rw,nosuid,nodev", LockReach::Unknown),
        ("ceph", "rw,name=admin", LockReach::Unknown),
    ];

    #[test]
    fn each_mount_sample_gets_its_reach_and_a_reason_naming_it() {
        for (fs_type, options, want) in SAMPLES {
            let options: Vec<String> = options.split(',').map(str::to_owned).collect();
            let (got, why) = classify(fs_type, &options);
            assert_eq!(got, *want, "{fs_type} {options:?}: {why}");
            assert!(why.contains(fs_type), "{fs_type}: {why}");
        }
    }

    #[test]
    fn a_probe_decides_what_the_mount_table_left_unknown() {
        use Probed::*;
        let cases: &[(&str, Result<Probed, String>, LockReach)] = &[
            ("fuse.sshfs", Ok(KernelTable), LockReach::LocalOnly),
            ("fuse.rclone", Ok(KernelTable), LockReach::LocalOnly),
            ("virtiofs", Ok(KernelTable), LockReach::LocalOnly),
            ("9p", Ok(KernelTable), LockReach::LocalOnly),
            ("fuse.bindfs", Ok(KernelTable), LockReach::Unknown),
            ("virtiofs", Ok(Filesystem), LockReach::Server),
            ("9p", Ok(Filesystem), LockReach::Server),
            ("fuse.sshfs", Ok(Filesystem), LockReach::Unknown),
            ("fuse.mystery", Ok(Filesystem), LockReach::Unknown),
            ("fuse.sshfs", Err("read-only".into()), LockReach::Unknown),
        ];
        for (fs_type, probed, want) in cases {
            let (got, why) = refine(fs_type, "unknown", probed.clone());
            assert_eq!(got, *want, "{fs_type} {probed:?}: {why}");
            assert!(why.contains(fs_type) || why.contains("read-only"), "{why}");
        }
        for t in ["fuse", "fuseblk", "fuse.bindfs", "virtiofs", "9p"] {
            assert!(probes_tell(t), "{t}");
        }
        for t in ["ext4", "nfs4", "cifs", "tmpfs", "overlay"] {
            assert!(!probes_tell(t), "{t}");
        }
    }

    /// On a local filesystem the kernel takes every lock: the probe finds its own in the table.
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        not(stagelock_posix_fallback)
    ))]
    #[test]
    fn a_probe_on_a_local_disk_finds_its_lock_in_the_kernels_table() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LockDir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        assert_eq!(probe(&dir), Ok(Probed::KernelTable));
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "nothing left"
        );
    }

    /// JuiceFS and GlusterFS take locks in their daemons: a probe lock on either is not in
    /// this host's table. Run by `scripts/multihost.sh` and `scripts/glusterfs.sh`.
    #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        not(stagelock_posix_fallback)
    ))]
    #[test]
    fn multihost_a_probe_lock_goes_to_the_filesystems_daemon() {
        let Some(a) = std::env::var_os("STAGELOCK_MULTIHOST_A") else {
            println!("skipped: run scripts/multihost.sh");
            return;
        };
        let dir = LockDir::open_ambient_dir(&a, cap_std::ambient_authority()).unwrap();
        assert_eq!(probe(&dir), Ok(Probed::Filesystem));
        let fs = dir.filesystem().unwrap();
        assert_eq!(fs.locks, LockReach::Server, "{fs:?}");
        assert!(dir.local_only().unwrap().is_none());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_temporary_directory_is_on_a_filesystem_the_kernel_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LockDir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let fs = dir.filesystem().unwrap();
        assert_ne!(fs.fs_type, "unknown");
        assert!(tmp.path().starts_with(&fs.mount_point), "{fs:?}");
        if fs.trusted_link_counts {
            assert_eq!(fs.locks, LockReach::Local, "{fs:?}");
        }
    }
}
