//! `stagelock doctor PATH`: what stagelock can promise on the filesystem holding PATH, and why.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use stagelock::{Filesystem, LockDir, LockReach};

/// Exit status: locks reach whoever can reach the filesystem.
const EXIT_ASSURED: u8 = 0;
/// Exit status: nothing is known about how far locks reach.
const EXIT_UNKNOWN: u8 = 3;
/// Exit status: a shared filesystem whose locks stay on this host.
const EXIT_LOCAL_ONLY: u8 = 4;

#[derive(Debug, Args)]
pub(super) struct DoctorArgs {
    /// A directory (a staging area's root, or where lock files go); it is only looked at.
    path: PathBuf,
    /// Print one JSON object: {"path", "fs_type", "source", "mount_point", "options": [..],
    /// "locks": "local"|"server"|"local-only"|"unknown", "reason", "exclusion":
    /// "assured"|"unknown"|"this-host-only", "link_counts": "trusted"|"rechecked",
    /// "durability"}.
    #[arg(long)]
    json: bool,
}

/// `stagelock doctor [--json] PATH`
pub(super) fn doctor(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let dir = cap_std::fs::Dir::open_ambient_dir(&args.path, cap_std::ambient_authority())
        .with_context(|| {
            format!(
                "doctor \"{}\": cannot open the directory",
                args.path.display()
            )
        })?;
    let fs = LockDir::new(dir)
        .filesystem()
        .map_err(|e| e.in_dir(&args.path))?;
    let (exclusion, code) = match fs.locks {
        LockReach::Local | LockReach::Server => ("assured", EXIT_ASSURED),
        LockReach::LocalOnly => ("this-host-only", EXIT_LOCAL_ONLY),
        _ => ("unknown", EXIT_UNKNOWN),
    };
    let link_counts = if fs.trusted_link_counts {
        "trusted"
    } else {
        "rechecked"
    };
    let durability = durability(&fs);
    if args.json {
        let path = args.path.to_string_lossy();
        println!(
            "{}",
            json!({
                "path": path, "fs_type": fs.fs_type, "source": fs.source,
                "mount_point": fs.mount_point.to_string_lossy(), "options": fs.options,
                "locks": fs.locks.name(), "reason": fs.reason, "exclusion": exclusion,
                "link_counts": link_counts, "durability": durability,
            })
        );
        return Ok(ExitCode::from(code));
    }
    println!("{}", args.path.display());
    println!(
        "  filesystem:  {} ({} on {}; {})",
        fs.fs_type,
        or_unknown(&fs.source),
        or_unknown(&fs.mount_point.to_string_lossy()),
        or_unknown(&fs.options.join(","))
    );
    println!("  locks:       {}: {}", fs.locks, fs.reason);
    println!(
        "  exclusion:   {}",
        match fs.locks {
            LockReach::Local => {
                "assured between every process of this host (no other host mounts a local \
                 filesystem; if this host exports it over NFS or SMB, its server's lock manager \
                 takes the same locks)"
            }
            LockReach::Server => "assured across every host that mounts it the same way",
            LockReach::LocalOnly => {
                "between this host's processes only: another host can hold the same lock at \
                 the same time, and nothing tells either of them"
            }
            _ => "unknown: test it across your hosts before relying on it",
        }
    );
    println!(
        "  link counts: {}",
        if fs.trusted_link_counts {
            "trusted: a lock file with one link still has its name"
        } else {
            "re-checked: every lock re-checks its path by device and inode"
        }
    );
    println!("  durability:  {durability}");
    Ok(ExitCode::from(code))
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

/// What a durable commit's `fsync`s reach on `fs`.
fn durability(fs: &Filesystem) -> &'static str {
    match fs.fs_type.as_str() {
        "tmpfs" | "ramfs" => "none: memory only, gone at reboot (commits are atomic, not durable)",
        "overlay" => "as its upper layer's filesystem",
        _ if fs.trusted_link_counts => "fsync reaches the disk (durable commits)",
        _ if fs.locks == LockReach::Server => {
            "as the server and the client's mount options promise: fsync is sent to the server"
        }
        _ => "as the filesystem's fsync promises (FUSE: as its daemon implements fsync)",
    }
}
