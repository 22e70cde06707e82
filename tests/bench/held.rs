//! Many locks held at once through one `LockDir`.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, quick) = (&b.base, b.quick);
    let mut counts: [usize; 2] = if quick {
        [1_000, 10_000]
    } else {
        [10_000, 100_000]
    };
    let rounds = if quick { 1 } else { 3 };
    let mut raised = raise_nofile(counts[1] as u64 + 1_000);
    if let Err(why) = &raised {
        // Without CAP_SYS_RESOURCE the hard limit is the ceiling: hold as many as it allows.
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        let most = hard.map_or(usize::MAX, |h| h.saturating_sub(1_000) as usize);
        let most = most / 1_000 * 1_000;
        if most >= 2_000 {
            eprintln!(
                "  held: {why}; holding {most} locks instead of {}",
                counts[1]
            );
            counts = [most / 10, most]; // the same tenfold step
            raised = raise_nofile(most as u64 + 1_000);
        }
    }
    match raised {
        Err(why) => eprintln!("  held: skipped, {why}"),
        Ok(()) => {
            let hd = scratch(base, "held");
            let locks = LockDir::new(open_dir(&hd).unwrap());
            // Per count: ns per take, ns per release, heap bytes and RSS bytes per held lock.
            let mut samples = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; 2];
            for _ in 0..rounds {
                for (k, &count) in counts.iter().enumerate() {
                    let mut held: Vec<StagingLock> = Vec::with_capacity(count);
                    let (heap0, rss0) = (LIVE.load(Ordering::SeqCst), rss_bytes());
                    let take = time_per_op(count as u32, || {
                        held.push(locks.create_and_lock("lock-").unwrap().0)
                    });
                    let heap = (LIVE.load(Ordering::SeqCst) - heap0) as f64 / count as f64;
                    let rss = rss_bytes().saturating_sub(rss0) as f64 / count as f64;
                    let mut all = held.drain(..);
                    let release = time_per_op(count as u32, || {
                        all.next().unwrap().unlock_and_delete().unwrap()
                    });
                    drop(all);
                    for (i, v) in [take, release, heap, rss].into_iter().enumerate() {
                        samples[k][i].push(v);
                    }
                }
            }
            let m: Vec<[f64; 4]> = samples.into_iter().map(|s| s.map(median)).collect();
            let (small, big) = (counts[0], counts[1]);
            for (what, i) in [("take", 0), ("release (unlock-and-delete)", 1)] {
                let r = m[1][i] / m[0][i];
                t.row(
                    &format!("{what} {big} held locks in one `LockDir`, per lock (vs {small})"),
                    us(m[1][i], 2),
                    us(m[0][i], 2),
                    format!("{r:.2}x"),
                    "<= 1.25x (linear)",
                    Some(r <= 1.25),
                );
            }
            let inline = std::mem::size_of::<StagingLock>() as f64;
            let per_lock = inline + m[1][2];
            t.row(
                &format!("memory per held lock ({big} held), `LockDir`: inline + heap"),
                format!("{per_lock:.0} B"),
                format!("{inline:.0} B inline + {:.0} B heap", m[1][2]),
                format!("RSS {:.0} B/lock", m[1][3]),
                "<= 256 B",
                Some(per_lock <= 256.0),
            );
            let _ = std::fs::remove_dir_all(&hd);
        }
    }
}

/// Raises the soft descriptor limit to at least `want` (and the hard one, if allowed).
fn raise_nofile(want: u64) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_none_or(|c| c >= want) {
        return Ok(());
    }
    let maximum = now.maximum.map(|m| m.max(want));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum,
        },
    )
    .map_err(|e| format!("cannot raise RLIMIT_NOFILE to {want} ({now:?}): {e}"))
}

/// The process's resident set, in bytes.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap();
    kib * 1024
}
