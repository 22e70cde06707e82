//! Who holds a lock, and their command lines. On Linux, from the kernel's lock table
//! (`/proc/locks`) and, for OFD locks (listed there with pid `-1`), the `lock:` lines of each
//! process's `/proc/PID/fdinfo/FD`; elsewhere nothing is known.
//!
//! Read-only and best effort: what cannot be read (another user's `fdinfo` without privilege,
//! no `/proc` mounted) is reported as unknown, never as an error.

#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use linux::{cmdline, holders, lock_table_id};
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) use unknown::{cmdline, holders, lock_table_id};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::fs;

    use crate::sys::types::FileId;
    use crate::sys::types::ProcHolder;

    /// The file `id`, open as `file`, as the lock table names it: `/proc/locks` (and
    /// `fdinfo`) give a file's superblock's device, which is not always its `st_dev` (Btrfs
    /// gives each subvolume a device of its own); the superblock's comes from the file's mount
    /// (`id` as it is where the mount is not known).
    pub(crate) fn lock_table_id(file: &fs::File, id: FileId) -> FileId {
        match crate::sys::unix::mounts::mount_of(file) {
            Ok(Some(mount)) => FileId {
                dev: rustix::fs::makedev(mount.dev.0, mount.dev.1) as u64,
                ino: id.ino,
            },
            _ => id,
        }
    }

    /// One granted `fcntl` lock from a `/proc/locks` or `fdinfo` line.
    #[derive(Debug, PartialEq, Eq)]
    struct Entry {
        ofd: bool,
        pid: i64,
        major: u32,
        minor: u32,
        ino: u64,
    }

    /// Parses `1: POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF` (or `OFDLCK ... -1 ...`). Blocked
    /// requests (`1: -> POSIX ...`), `flock(2)` locks and leases are `None`: they hold nothing that
    /// excludes a staging lock.
    fn parse(line: &str) -> Option<Entry> {
        let mut words = line.split_whitespace();
        words.next()?; // "1:"
        let ofd = match words.next()? {
            "POSIX" => false,
            "OFDLCK" => true,
            _ => return None, // "->", FLOCK, LEASE, DELEG
        };
        words.next()?; // ADVISORY / MANDATORY
        words.next()?; // READ / WRITE
        let pid = words.next()?.parse().ok()?;
        let mut id = words.next()?.split(':');
        let major = u32::from_str_radix(id.next()?, 16).ok()?;
        let minor = u32::from_str_radix(id.next()?, 16).ok()?;
        let ino = id.next()?.parse().ok()?;
        Some(Entry {
            ofd,
            pid,
            major,
            minor,
            ino,
        })
    }

    /// The granted `fcntl` locks on the file `id` (as [`lock_table_id`] gives it); `None` if
    /// `/proc/locks` cannot be read.
    pub(crate) fn holders(id: FileId) -> Option<Vec<ProcHolder>> {
        let table = fs::read_to_string("/proc/locks").ok()?;
        let (major, minor) = (
            rustix::fs::major(id.dev as rustix::fs::Dev),
            rustix::fs::minor(id.dev as rustix::fs::Dev),
        );
        let ours = |e: &Entry| e.major == major && e.minor == minor && e.ino == id.ino;
        let entries: Vec<Entry> = table.lines().filter_map(parse).filter(ours).collect();
        let mut found: Vec<ProcHolder> = entries
            .iter()
            .filter(|e| !e.ofd)
            .map(|e| ProcHolder {
                ofd: false,
                pid: u32::try_from(e.pid).ok(),
            })
            .collect();
        if entries.iter().any(|e| e.ofd) {
            let pids = ofd_holders(&ours);
            if pids.is_empty() {
                found.push(ProcHolder {
                    ofd: true,
                    pid: None,
                });
            }
            found.extend(pids.into_iter().map(|pid| ProcHolder {
                ofd: true,
                pid: Some(pid),
            }));
        }
        found.dedup();
        Some(found)
    }

    /// The processes with a descriptor whose `fdinfo` shows an OFD lock matching `ours`, in pid
    /// order. Unreadable processes (other users', exited ones) are skipped.
    fn ofd_holders(ours: &dyn Fn(&Entry) -> bool) -> Vec<u32> {
        let mut pids = Vec::new();
        let Ok(procs) = fs::read_dir("/proc") else {
            return pids;
        };
        for proc in procs.flatten() {
            let Some(pid) = proc
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = fs::read_dir(proc.path().join("fdinfo")) else {
                continue;
            };
            let holds = fds.flatten().any(|fd| {
                fs::read_to_string(fd.path()).is_ok_and(|info| {
                    info.lines()
                        .filter_map(|l| l.strip_prefix("lock:"))
                        .filter_map(parse)
                        .any(|e| e.ofd && ours(&e))
                })
            });
            if holds {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids
    }

    /// The command line of process `pid` (its arguments, lossily as UTF-8); `None` if it cannot be
    /// read or is empty (a kernel thread, a zombie).
    pub(crate) fn cmdline(pid: u32) -> Option<Vec<String>> {
        let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        (!args.is_empty()).then_some(args)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parses_granted_fcntl_locks_only() {
            let posix = parse("1: POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF").unwrap();
            assert_eq!(
                posix,
                Entry {
                    ofd: false,
                    pid: 1234,
                    major: 0xfd,
                    minor: 1,
                    ino: 5678
                }
            );
            let ofd = parse("2: OFDLCK ADVISORY  WRITE -1 00:2a:99 0 EOF").unwrap();
            assert!(ofd.ofd);
            assert_eq!((ofd.pid, ofd.major, ofd.minor, ofd.ino), (-1, 0, 0x2a, 99));
            assert_eq!(parse("1: -> POSIX  ADVISORY  WRITE 1 fd:01:5 0 EOF"), None);
            assert_eq!(parse("3: FLOCK  ADVISORY  WRITE 7 fd:01:5 0 EOF"), None);
            assert_eq!(parse(""), None);
        }
    }
}

/// Where the OS cannot tell (no `/proc`): nothing is known.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod unknown {
    use crate::sys::types::FileId;
    use crate::sys::types::ProcHolder;

    /// The file as the lock table would name it: there is no table.
    pub(crate) fn lock_table_id(_file: &std::fs::File, id: FileId) -> FileId {
        id
    }

    /// Who holds locks on the file `id`: unknown.
    pub(crate) fn holders(_id: FileId) -> Option<Vec<ProcHolder>> {
        None
    }

    /// A holder's command line: unknown.
    pub(crate) fn cmdline(_pid: u32) -> Option<Vec<String>> {
        None
    }
}
