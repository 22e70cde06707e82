//! One retry loop for every "make something fresh, someone may take it first" operation.
//!
//! In the spirit of tempfile's `create_helper`: the caller passes a closure that makes one
//! attempt; the loop only counts. Used by create-and-lock (fresh names, fresh files),
//! try-lock-path (a file replaced under us) and per-directory stages (fresh directories).

use crate::error::Error;

/// Runs `attempt` at most `attempts` times, until it returns `Ok(Some(_))` or an error.
///
/// An attempt returns `Ok(None)` to ask for another try (a name collision, a file someone else
/// locked or deleted first). If every attempt asked for another, the result is `Ok(None)`, and
/// the caller reports giving up with its own context (typically the last name tried).
pub(crate) fn retry<T>(
    attempts: u32,
    mut attempt: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<Option<T>, Error> {
    for _ in 0..attempts {
        if let Some(done) = attempt()? {
            return Ok(Some(done));
        }
    }
    Ok(None)
}
