//! What Windows makes of a path before any directory handle is asked: the forms that name
//! something other than a file beneath the directory a path is resolved in. Pure string work,
//! no system call; the crate asks it before touching the filesystem (`dir::check_path`).
//!
//! | form | examples | what Windows makes of it | refused as |
//! |---|---|---|---|
//! | a drive | `C:x.lock`, `C:\x.lock`, `C:/x.lock` | the drive's current directory or root | an escape |
//! | rooted, UNC, device or NT namespace | `\x`, `\\?\C:\x`, `\\.\C:\x`, `\\server\share\x`, `\??\C:\x` | the current drive's root, a share, a device, the object namespace | an escape |
//! | a `:` anywhere else | `x.lock:stream` | an NTFS alternate data stream of `x.lock` | invalid |
//! | a reserved device name as a component, any case, with any extension | `CON`, `nul.lock`, `COM1`, `LPT1.txt`, `a\AUX` | the device (console, null, serial port, printer) | invalid |
//! | a component ending in a dot or a space | `x.lock.`, `x.lock ` | the name with them stripped (`x.lock`): another file than the one named | invalid |

use std::path::Path;

use crate::sys::types::HostForm;

/// Whether paths have forms here that [`host_form`] refuses.
pub(crate) const HAS_HOST_FORMS: bool = true;

/// What separates a path's components: both slashes.
pub(crate) const SEPARATORS: [char; 2] = ['/', '\\'];

/// Whether `path` is one of the forms in the table above (checked in that order, so `C:\CON`
/// is an escape); `None` for a path Windows resolves as names beneath its directory.
pub(crate) fn host_form(path: &Path) -> Option<HostForm> {
    let bytes = path.as_os_str().as_encoded_bytes();
    if let [letter, b':', ..] = bytes
        && letter.is_ascii_alphabetic()
    {
        return Some(HostForm::Escape("a drive-prefixed path (Windows)"));
    }
    if let [b'\\' | b'/', ..] = bytes {
        return Some(HostForm::Escape(
            "a rooted, UNC, device or NT-namespace path (Windows)",
        ));
    }
    if bytes.contains(&b':') {
        return Some(HostForm::Invalid(
            "a ':' names an NTFS alternate data stream (Windows)",
        ));
    }
    for component in bytes.split(|b| matches!(b, b'\\' | b'/')) {
        if reserved_device(component) {
            return Some(HostForm::Invalid(
                "a reserved device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9) names a device \
                 (Windows)",
            ));
        }
        if component != b"." && component != b".." && matches!(component.last(), Some(b'.' | b' '))
        {
            return Some(HostForm::Invalid(
                "a name ending in a dot or a space names the file without them (Windows)",
            ));
        }
    }
    None
}

/// Whether the name `component` is a device whatever its directory: its part before the first
/// dot, without trailing spaces, is a reserved name in any case (the list of Microsoft's
/// "Naming Files, Paths, and Namespaces", which cap-std refuses too when opening).
fn reserved_device(component: &[u8]) -> bool {
    let stem = match component.iter().position(|&b| b == b'.') {
        Some(dot) => &component[..dot],
        None => component,
    };
    let end = stem
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(0, |last| last + 1);
    let stem = &stem[..end];
    let upper = |s: &[u8]| s.to_ascii_uppercase();
    match stem.len() {
        3 => matches!(&upper(stem)[..], b"CON" | b"PRN" | b"AUX" | b"NUL"),
        // COM0-9, LPT0-9, and the superscripts ¹ ² ³ (two bytes each in UTF-8).
        4 | 5 => {
            let (head, tail) = stem.split_at(3);
            matches!(&upper(head)[..], b"COM" | b"LPT")
                && (matches!(tail, [b'0'..=b'9']) || matches!(tail, [0xC2, 0xB9 | 0xB2 | 0xB3]))
        }
        6 => upper(stem) == b"CONIN$",
        7 => upper(stem) == b"CONOUT$",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(path: &str) -> &'static str {
        match host_form(Path::new(path)) {
            Some(HostForm::Escape(_)) => "escape",
            Some(HostForm::Invalid(_)) => "invalid",
            None => "name",
        }
    }

    #[test]
    fn each_form_is_refused_as_the_table_says() {
        let table = [
            ("C:x.lock", "escape"),
            ("C:\\x.lock", "escape"),
            ("C:/x.lock", "escape"),
            ("c:x", "escape"),
            ("\\\\?\\C:\\x", "escape"),
            ("\\\\.\\C:\\x", "escape"),
            ("\\\\server\\share\\x", "escape"),
            ("//server/share/x", "escape"),
            ("\\??\\C:\\x", "escape"),
            ("\\x.lock", "escape"),
            ("C:\\CON", "escape"),
            ("x.lock:stream", "invalid"),
            ("x.lock::$DATA", "invalid"),
            ("a\\C:x", "invalid"),
            ("CON", "invalid"),
            ("con", "invalid"),
            ("NUL.lock", "invalid"),
            ("nul.tar.gz", "invalid"),
            ("COM1", "invalid"),
            ("com9.txt", "invalid"),
            ("LPT1", "invalid"),
            ("lPt0", "invalid"),
            ("COM¹", "invalid"),
            ("AUX .txt", "invalid"),
            ("conin$", "invalid"),
            ("CONOUT$.x", "invalid"),
            ("a\\PRN\\x.lock", "invalid"),
            ("a/aux", "invalid"),
            ("x.lock.", "invalid"),
            ("x.lock ", "invalid"),
            ("a.\\x.lock", "invalid"),
            ("...", "invalid"),
            ("x.lock", "name"),
            ("a\\b\\x.lock", "name"),
            ("./x.lock", "name"),
            ("..\\x.lock", "name"), // an escape, but cap-std's to refuse
            ("CONSOLE", "name"),
            ("COM10", "name"),
            ("LPT", "name"),
            ("xCON", "name"),
            (".CON", "name"),
            ("lock-CON", "name"),
            (" x.lock", "name"),
        ];
        for (path, want) in table {
            assert_eq!(form(path), want, "{path}");
        }
    }
}
