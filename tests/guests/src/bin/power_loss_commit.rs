//! Arguments `STAGING DEST full|none`: stages a copy of everything under `/src` in the staging
//! area `STAGING` of `/work`, then commits it to `DEST` (beneath `/work`) with that durability.
use stagelock_test_guests::*;

/// Copies the tree at `from` (a guest path) to `to` (a guest path).
fn copy_tree(from: &str, to: &str) {
    for entry in std::fs::read_dir(from).expect("list the source") {
        let entry = entry.expect("a source entry");
        let name = entry.file_name().into_string().expect("a UTF-8 name");
        let (src, dst) = (format!("{from}/{name}"), format!("{to}/{name}"));
        if entry.file_type().expect("its type").is_dir() {
            std::fs::create_dir(&dst).expect("make a directory in the stage");
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy into the stage");
        }
    }
}

fn main() {
    let (staging, dest, durability): (String, String, String) = (arg(0), arg(1), arg(2));
    let durability = match durability.as_str() {
        "full" => Durability::Full,
        "none" => Durability::None,
        other => panic!("no durability {other:?}"),
    };
    let work = work();
    let area = area(&subdir(&work, &staging), "pairs").expect("area");
    let stage = stage(&area).expect("stage");
    copy_tree("/src", &format!("/work/{staging}/{}", stage.path()));
    let options = CommitOptions::new().durability(durability);
    show(
        "commit",
        stage
            .commit_with(&work, &dest, options)
            .map_err(|e| e.error),
        |_| String::new(),
    );
}
