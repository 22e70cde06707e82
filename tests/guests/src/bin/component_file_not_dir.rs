//! Uses a descriptor of a plain file (`plain.txt`, created) as the directory of a lock.
use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
use stagelock_test_guests::*;

fn main() {
    let file = work()
        .open_at(
            PathFlags::empty(),
            "plain.txt",
            OpenFlags::CREATE,
            DescriptorFlags::WRITE,
        )
        .expect("create plain.txt");
    let _held = try_lock(&file, "x.lock");
}
