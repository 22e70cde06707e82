//! What recovery did, as a guest gets it: [`Report`], with its stages named
//! ([`RemovedStage`], [`SkippedStage`]) and printed as the native report is.

use std::fmt;

use crate::bindings::stagelock::staging::staging;

/// What [`StagingArea::recover_stale`](crate::StagingArea::recover_stale) did. Its `Display`
/// prints one line per stage, then the count, as the native `stagelock::Report` and
/// `stagelock recover` do:
///
/// ```text
/// removed 7: an orphan resource without a lock file
/// skipped 3141592653: held by a live builder
/// 1 removed, 1 skipped
/// ```
///
/// The fields are tuples, as in 1.0.0, and deprecated: [`removed_stages`](Self::removed_stages)
/// and [`skipped_stages`](Self::skipped_stages) give them named, as the native crate's
/// `Recovered` and `Skipped` (the fields stay, and keep working, through 1.x).
///
/// # Examples
///
/// ```
/// # #![allow(deprecated)] // a report made by hand, from its 1.0.0 fields
/// use stagelock_guest::Report;
///
/// let report = Report {
///     dry_run: false,
///     removed: vec![("7".into(), false, true)],
///     skipped: vec![("3141592653".into(), "held by a live builder".into())],
/// };
/// let removed = report.removed_stages().next().unwrap();
/// assert_eq!((removed.id, removed.had_lock), ("7", false));
/// assert_eq!(removed.reason(), "an orphan resource without a lock file");
/// assert_eq!(report.skipped_stages().next().unwrap().reason, "held by a live builder");
/// assert_eq!(
///     report.to_string(),
///     "removed 7: an orphan resource without a lock file\n\
///      skipped 3141592653: held by a live builder\n\
///      1 removed, 1 skipped"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// `(id, had_lock, had_resource)` of each stage removed.
    #[deprecated(note = "use `removed_stages()`, with named fields")]
    pub removed: Vec<(String, bool, bool)>,
    /// `(id, why)` of each stage left alone.
    #[deprecated(note = "use `skipped_stages()`, with named fields")]
    pub skipped: Vec<(String, String)>,
}

// The deprecated fields are still where the report lives.
#[allow(deprecated)]
impl Report {
    /// The stages removed (or, in a dry run, that would be), with named fields.
    pub fn removed_stages(&self) -> impl ExactSizeIterator<Item = RemovedStage<'_>> {
        self.removed
            .iter()
            .map(|(id, had_lock, had_resource)| RemovedStage {
                id,
                had_lock: *had_lock,
                had_resource: *had_resource,
            })
    }

    /// The stages left alone, with named fields.
    pub fn skipped_stages(&self) -> impl ExactSizeIterator<Item = SkippedStage<'_>> {
        self.skipped
            .iter()
            .map(|(id, reason)| SkippedStage { id, reason })
    }
}

impl fmt::Display for Report {
    #[allow(deprecated)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for r in self.removed_stages() {
            writeln!(f, "{verb} {}: {}", r.id, r.reason())?;
        }
        for k in self.skipped_stages() {
            writeln!(f, "skipped {}: {}", k.id, k.reason)?;
        }
        write!(
            f,
            "{} {verb}, {} skipped",
            self.removed.len(),
            self.skipped.len()
        )
    }
}

/// A stage recovery removed, from [`Report::removed_stages`] (the native crate's
/// `stagelock::Recovered`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RemovedStage<'a> {
    /// The stage's ID.
    pub id: &'a str,
    /// Whether it had a lock file (false: an orphan resource).
    pub had_lock: bool,
    /// Whether it had a resource (false: an orphan lock file).
    pub had_resource: bool,
}

impl RemovedStage<'_> {
    /// Why it was removed, in the native crate's words: `its builder is gone`, `an orphan
    /// resource without a lock file`, `an orphan lock file without a resource`, `an empty
    /// stage`.
    pub fn reason(&self) -> &'static str {
        match (self.had_lock, self.had_resource) {
            (true, true) => "its builder is gone",
            (false, true) => "an orphan resource without a lock file",
            (true, false) => "an orphan lock file without a resource",
            (false, false) => "an empty stage",
        }
    }
}

/// A stage recovery left alone, from [`Report::skipped_stages`] (the native crate's
/// `stagelock::Skipped`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SkippedStage<'a> {
    /// The stage's ID.
    pub id: &'a str,
    /// Why, for people: the native `SkipReason`'s text (`held by a live builder`,
    /// `failed: ...` with the host's error).
    pub reason: &'a str,
}

impl From<staging::Report> for Report {
    #[allow(deprecated)]
    fn from(r: staging::Report) -> Self {
        Report {
            dry_run: r.dry_run,
            removed: r
                .removed
                .into_iter()
                .map(|x| (x.id, x.had_lock, x.had_resource))
                .collect(),
            skipped: r.skipped.into_iter().map(|x| (x.id, x.message)).collect(),
        }
    }
}
