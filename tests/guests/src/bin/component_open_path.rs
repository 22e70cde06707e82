//! A staging area opened by its path in the component (`StagingArea::open_path`): a stage
//! knows its own path there (`Stage::local_path`) and std::fs builds into it; paths that no
//! grant holds, that are missing or that name a file are refused with their one-line errors.
use stagelock_test_guests::*;

fn main() {
    let work = work();
    for path in ["/work/builds/staging/", "/work/builds/staging"] {
        let Some(area) = show("open", StagingArea::open_path(path, Layout::Pairs), |a| {
            format!("{:?}", a.path())
        }) else {
            return;
        };
        let stage = area.stage().expect("stage");
        let local = stage.local_path().expect("opened by path");
        let expected = format!("/work/builds/staging/{}", stage.path());
        assert_eq!(local.to_str(), Some(expected.as_str()));
        std::fs::write(local.join("data"), "built with std::fs").expect("write");
        let dest = format!("out/{}", stage.id());
        stage
            .commit(&work, &dest)
            .map_err(|f| f.error)
            .expect("commit");
        println!(
            "ok commit {}",
            std::fs::read_to_string(format!("/work/{dest}/data")).unwrap()
        );
    }
    // An area opened from a descriptor has no path of its own.
    let area = StagingArea::open(&subdir(&work, "builds/staging"), Layout::Pairs).unwrap();
    let stage = area.stage().unwrap();
    println!("ok descriptor {:?} {:?}", area.path(), stage.local_path());
    stage.abort().unwrap();
    for path in [
        "/elsewhere/staging",
        "/workshop",
        "/work/missing",
        "/work/file",
    ] {
        show("open", StagingArea::open_path(path, Layout::Pairs), |_| {
            String::new()
        });
    }
}
