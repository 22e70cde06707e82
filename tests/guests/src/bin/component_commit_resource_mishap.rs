//! Stages a file, then removes or replaces its own resource as argument 1 says (`vanished`,
//! `file`, `symlink-out`), commits to `out` (which fails and hands the stage back) and aborts,
//! in the layout given as argument 0.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let layout: String = arg(0);
    let mishap: String = arg(1);
    let area = area(&dir, &layout).expect("area");
    let stage = stage(&area).expect("stage");
    stage_write(&stage, "a.txt", "hello");
    let resource = stage.path();
    dir.unlink_file_at(&format!("{resource}/a.txt"))
        .expect("unlink a.txt");
    dir.remove_directory_at(&resource).expect("remove resource");
    match mishap.as_str() {
        "vanished" => {}
        "file" => touch(&dir, &resource),
        "symlink-out" => {
            // To `elsewhere`, beside the granted directory: out of the staging area.
            let up = "../".repeat(resource.split('/').count());
            dir.symlink_at(&format!("{up}elsewhere"), &resource)
                .expect("symlink");
        }
        other => panic!("no mishap {other:?}"),
    }
    let stage = commit(stage, &dir, "out", false).expect("the stage comes back");
    show("abort", stage.abort(), |()| String::new());
}
