//! Which mount a file lives on: Windows lists no mount table the way Linux does, so nothing is
//! said (a caller reports the filesystem as unknown).

use std::fs::File;
use std::io;

use crate::sys::types::MountEntry;

/// Always `Ok(None)`: see the module's docs.
pub(crate) fn mount_of(_file: &File) -> io::Result<Option<MountEntry>> {
    Ok(None)
}
