//! Commits survive power loss: LazyFS (a FUSE filesystem that keeps written data in its own
//! cache until `fsync`, and drops every unsynced byte on `clear-cache`, as a power cut would)
//! runs stage → write → commit → power cut trials, through the CLI, the Rust API and a guest
//! component.
//! Durable commits (the default) must keep every committed byte; the same trials without sync
//! must lose some, or the test proves nothing (so it fails either way).
//!
//! Needs `/dev/fuse`, `fusermount3` and LazyFS: `$STAGELOCK_LAZYFS`, else
//! `../shared/tools/lazyfs/lazyfs` beside the repository. Without them each test says so and
//! passes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use cap_std::fs::Dir;
use stagelock::{CommitOptions, Durability, Layout, StagingArea};
use stagelock_tests::guests::*;
use stagelock_tests::{
    FuseMount, GuestRun, assert_test_exists, foreach_power_loss, power_cut, stagelock_bin,
};

foreach_power_loss!(assert_test_exists);

const TRIALS: u32 = 20;

/// The files one trial commits: (relative path, contents).
type Files = Vec<(String, Vec<u8>)>;

/// One way to stage `files` and commit them to `dest` (a path on the mount) from the staging
/// area `staging`, with `durability`. The trials do not care how: a guest variant can join.
type StageCommit<'a> = &'a dyn Fn(&Path, &Path, &Files, Durability) -> Result<()>;

/// A small xorshift generator: random contents without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// What trial `trial` writes: a short text, a 5,000-byte file, a few random ones (one nested).
fn files(trial: u32) -> Files {
    let seed = 0x9E37_79B9_7F4A_7C15 ^ u64::from(trial + 1) ^ stagelock_tests::now_ns() as u64;
    let mut rng = Rng(seed | 1);
    let mut files = vec![
        (
            "notes.txt".to_string(),
            format!("trial {trial}\n").into_bytes(),
        ),
        ("five-thousand.bin".to_string(), rng.bytes(5000)),
        ("sub/nested.bin".to_string(), rng.bytes(1000)),
    ];
    for i in 0..3 {
        let len = 1 + (rng.next() % 20_000) as usize;
        files.push((format!("random-{i}.bin"), rng.bytes(len)));
    }
    files
}

/// `TRIALS` times: stage and commit fresh files with `durability`, cut the power, compare
/// every committed file. Returns how many trials lost data, with what the first loss was.
fn trials(
    mount: &FuseMount,
    how: StageCommit<'_>,
    durability: Durability,
) -> Result<(u32, Option<String>)> {
    let base = mount.path().join(format!("{durability:?}"));
    let staging = base.join("staging");
    let out = base.join("out");
    std::fs::create_dir_all(&staging)?;
    std::fs::create_dir_all(&out)?;
    power_cut(mount)?; // the directories themselves are metadata: they stay
    let (mut lost, mut first) = (0, None);
    for trial in 0..TRIALS {
        let files = files(trial);
        let dest = out.join(format!("trial-{trial}"));
        how(&staging, &dest, &files, durability).with_context(|| format!("trial {trial}"))?;
        power_cut(mount)?;
        let mut damage = Vec::new();
        for (name, contents) in &files {
            match std::fs::read(dest.join(name)) {
                Ok(read) if &read == contents => {}
                Ok(read) => damage.push(format!(
                    "{name}: {} of {} bytes, different",
                    read.len(),
                    contents.len()
                )),
                Err(e) => damage.push(format!("{name}: {e}")),
            }
        }
        if !damage.is_empty() {
            lost += 1;
            first.get_or_insert_with(|| format!("trial {trial}: {}", damage.join("; ")));
        }
    }
    Ok((lost, first))
}

/// Runs the durable and the non-durable trials of `how` and checks both outcomes.
fn prove(name: &str, how: StageCommit<'_>) -> Result<()> {
    let Some(mount) = stagelock_tests::lazyfs_mount()? else {
        return Ok(());
    };
    let (durable_lost, durable_first) = trials(&mount, how, Durability::Full)?;
    let (none_lost, none_first) = trials(&mount, how, Durability::None)?;
    println!(
        "power loss via {name}: durable lost {durable_lost}/{TRIALS}, \
         not durable lost {none_lost}/{TRIALS} (first: {})",
        none_first.as_deref().unwrap_or("none")
    );
    ensure!(
        durable_lost == 0,
        "{name}: durable commits lost data in {durable_lost}/{TRIALS} trials; first: {}",
        durable_first.unwrap_or_default()
    );
    ensure!(
        none_lost > 0,
        "{name}: commits without sync lost nothing in {TRIALS} power cuts: the trials \
         cannot tell a durable commit from one that is not"
    );
    Ok(())
}

#[test]
fn committed_files_survive_power_loss_through_the_api() -> Result<()> {
    prove("the Rust API", &|staging, dest, files, durability| {
        let ambient = cap_std::ambient_authority();
        let area = StagingArea::open_ambient_dir(staging, Layout::Pairs, ambient)?;
        let stage = area.stage()?;
        for (name, contents) in files {
            if let Some(parent) = Path::new(name).parent() {
                stage.dir().create_dir_all(parent)?;
            }
            stage.dir().write(name, contents)?;
        }
        let dest_dir = Dir::open_ambient_dir(dest.parent().context("no parent")?, ambient)?;
        let name = dest.file_name().context("no name")?;
        let options = CommitOptions::new().durability(durability);
        stage.commit_with(&dest_dir, name, options)?;
        Ok(())
    })
}

/// Writes `files` beneath `dir`.
fn write_files(dir: &Path, files: &Files) -> Result<()> {
    for (name, contents) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().context("no parent")?)?;
        std::fs::write(path, contents)?;
    }
    Ok(())
}

/// A guest component stages a copy of the files (granted read-only at `/src`) and commits it.
#[test]
fn power_loss_commit() -> Result<()> {
    prove("a guest", &|staging, dest, files, durability| {
        let source = tempfile::tempdir()?;
        write_files(source.path(), files)?;
        let base = staging.parent().context("no parent")?;
        let rel = |p: &Path| -> Result<String> {
            Ok(p.strip_prefix(base)?
                .to_str()
                .context("not UTF-8")?
                .to_owned())
        };
        let durability = match durability {
            Durability::Full => "full",
            _ => "none",
        };
        let run = GuestRun::new(&[&rel(staging)?, &rel(dest)?, durability])
            .work(base)
            .grant(source.path(), "/src", wasmtime_wasi::FsPerms::ReadOnly)
            .run(POWER_LOSS_COMMIT)
            .succeeded();
        ensure!(run.lines().last() == Some(&"ok commit"), "{}", run.stdout);
        Ok(())
    })
}

#[test]
fn committed_files_survive_power_loss_through_the_cli() -> Result<()> {
    let bin = stagelock_bin(false);
    prove("the CLI", &|staging, dest, files, durability| {
        // The command copies files prepared outside the mount into the stage.
        let source = tempfile::tempdir()?;
        write_files(source.path(), files)?;
        let mut command = Command::new(bin);
        command.arg("stage").arg(staging).arg("--into").arg(dest);
        if durability == Durability::None {
            command.arg("--no-sync");
        }
        let out = command
            .args(["--layout", "per-dir", "--", "sh", "-c"])
            .arg("cp -R \"$0\"/. \"$STAGELOCK_STAGE_DIR\"")
            .arg(source.path())
            .output()?;
        ensure!(out.status.success(), "stagelock stage: {out:?}");
        Ok(())
    })
}
