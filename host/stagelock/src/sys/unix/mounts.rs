//! Which mount a file lives on, as the kernel lists it: `/proc/self/mountinfo`'s line for the
//! file's mount ID (Linux and Android). Other Unix systems have no such table here.

use std::fs::File;
use std::io;

use crate::sys::types::MountEntry;

/// The mount `file` lives on, from `/proc/self/mountinfo` (found by the mount ID `statx`
/// gives). `Ok(None)` when the kernel gives no mount ID or lists no such mount.
///
/// # Errors
///
/// `statx` failing on `file`, or `/proc/self/mountinfo` not readable (`/proc` not mounted).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn mount_of(file: &File) -> io::Result<Option<MountEntry>> {
    use rustix::fs::{AtFlags, StatxFlags};
    // `STATX_MNT_ID`: the ID mountinfo's first field lists (not the unique one).
    let st = rustix::fs::statx(file, c"", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
    if st.stx_mask & StatxFlags::MNT_ID.bits() == 0 {
        return Ok(None);
    }
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table
        .lines()
        .filter_map(parse_mountinfo_line)
        .find(|(id, _)| *id == st.stx_mnt_id)
        .map(|(_, entry)| entry))
}

/// Where the kernel lists no mounts for us: nothing to say.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn mount_of(_file: &File) -> io::Result<Option<MountEntry>> {
    Ok(None)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
/// One line of `/proc/PID/mountinfo` (proc(5)): its mount ID and what it says, or `None` for
/// a line that is not in that format.
///
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`: ID,
/// parent ID, device, root, mount point, per-mount options, optional fields up to `-`, then
/// the filesystem type, its source, and the superblock's options. The mount point and the
/// source have spaces, tabs, newlines and backslashes escaped in octal.
pub(crate) fn parse_mountinfo_line(line: &str) -> Option<(u64, MountEntry)> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let _parent = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let dev = (major.parse().ok()?, minor.parse().ok()?);
    let _root = fields.next()?;
    let mount_point = unescape(fields.next()?);
    let mount_options = fields.next()?;
    for optional in fields.by_ref() {
        if optional == "-" {
            break;
        }
    }
    let fs_type = fields.next()?.to_owned();
    let source = unescape(fields.next()?);
    let super_options = fields.next().unwrap_or("");
    // The same option can show in both lists (`rw`); keep the first.
    let mut options: Vec<String> = Vec::new();
    for option in mount_options.split(',').chain(super_options.split(',')) {
        if !option.is_empty() && !options.iter().any(|o| o == option) {
            options.push(option.to_owned());
        }
    }
    Some((
        id,
        MountEntry {
            mount_point: std::path::PathBuf::from(mount_point),
            fs_type,
            source,
            options,
            dev,
        },
    ))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_mountinfo_line_gives_its_id_type_source_and_both_option_lists() {
        let (id, m) = parse_mountinfo_line(
            "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 shared:2 - nfs4 srv:/x\\134y rw,vers=4.2,local_lock=none",
        )
        .unwrap();
        assert_eq!(id, 36);
        assert_eq!(m.mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(m.fs_type, "nfs4");
        assert_eq!(m.source, "srv:/x\\y");
        assert_eq!(m.options, ["rw", "noatime", "vers=4.2", "local_lock=none"]);
        assert_eq!(m.dev, (98, 0));
        assert!(parse_mountinfo_line("not a mountinfo line").is_none());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_mount_of_a_file_is_the_one_its_directory_is_on() {
        let tmp = tempfile::tempdir().unwrap();
        let file = File::open(tmp.path()).unwrap();
        let m = mount_of(&file)
            .unwrap()
            .expect("a mount for the temporary directory");
        assert!(tmp.path().starts_with(&m.mount_point), "{m:?}");
        assert!(!m.fs_type.is_empty());
    }
}
