//! `serde::Serialize` for what recovery did (feature `serde`): [`Report`] and its parts, with
//! every reason both as data to match on and in the words `Display` uses.
//!
//! ```json
//! {"dry_run": false,
//!  "removed": [{"id": "7", "had_lock": false, "had_resource": true,
//!               "reason": "an orphan resource without a lock file"}],
//!  "skipped": [{"id": "3141592653",
//!               "reason": {"kind": "held", "text": "held by a live builder"}}]}
//! ```
//!
//! A skip reason's `kind` is `held`, `vanished`, `failed` or `not-a-stage`; `not-a-stage` adds
//! `foreign` (`path`, `found`, `expected`), and `failed` has the error's one-line message (its
//! operation and path) in `text`. There is no `Deserialize`: a report describes what happened
//! to files, and an [`Error`](crate::Error) is not rebuilt from its text.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{Foreign, Recovered, Report, SkipReason, Skipped};

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Report", 3)?;
        s.serialize_field("dry_run", &self.dry_run)?;
        s.serialize_field("removed", &self.removed)?;
        s.serialize_field("skipped", &self.skipped)?;
        s.end()
    }
}

impl Serialize for Recovered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Recovered", 4)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("had_lock", &self.had_lock)?;
        s.serialize_field("had_resource", &self.had_resource)?;
        s.serialize_field("reason", self.reason())?;
        s.end()
    }
}

impl Serialize for Skipped {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Skipped", 2)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("reason", &self.reason)?;
        s.end()
    }
}

impl Serialize for SkipReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (kind, foreign) = match self {
            SkipReason::Held => ("held", None),
            SkipReason::Vanished => ("vanished", None),
            SkipReason::Failed(_) => ("failed", None),
            SkipReason::NotAStage(foreign) => ("not-a-stage", Some(foreign)),
        };
        let mut s =
            serializer.serialize_struct("SkipReason", 2 + usize::from(foreign.is_some()))?;
        s.serialize_field("kind", kind)?;
        s.serialize_field("text", &self.to_string())?;
        if let Some(foreign) = foreign {
            s.serialize_field("foreign", foreign)?;
        }
        s.end()
    }
}

impl Serialize for Foreign {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Foreign", 3)?;
        // Relative to the area's root, made of names this crate read from a directory: not
        // always UTF-8 on Unix, so written lossily rather than failing the whole report.
        s.serialize_field("path", &self.path.to_string_lossy())?;
        s.serialize_field("found", self.found)?;
        s.serialize_field("expected", self.expected)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use cap_std::ambient_authority;
    use cap_std::fs::Dir;
    use serde_json::json;

    use crate::{Layout, StagingArea};

    /// Every part of a report, as JSON: a removed orphan, a live stage, a name that is not a
    /// stage, with each reason's kind and its words.
    #[test]
    fn a_report_serializes_with_its_reasons_as_data_and_as_words() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let area = StagingArea::with_layout(&root, Layout::Pairs).unwrap();
        root.create_dir("temp-dir-7").unwrap(); // its builder died before taking its lock
        root.write("temp-dir-9", "a file where a stage has a directory")
            .unwrap();
        let live = area.stage().unwrap();
        let report = area.recover_stale().unwrap();
        let mut value = serde_json::to_value(&report).unwrap();
        // The order of skips follows the directory's; compare them as a set.
        value["skipped"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|k| k["id"].as_str().unwrap().to_owned());
        let mut skipped = vec![
            json!({"id": live.id(),
                   "reason": {"kind": "held", "text": "held by a live builder"}}),
            json!({"id": "9",
                   "reason": {"kind": "not-a-stage",
                              "text": "not a stage: temp-dir-9 is a regular file, where a stage has a directory",
                              "foreign": {"path": "temp-dir-9", "found": "a regular file",
                                          "expected": "a directory"}}}),
        ];
        skipped.sort_by_key(|k| k["id"].as_str().unwrap().to_owned());
        assert_eq!(
            value,
            json!({
                "dry_run": false,
                "removed": [{"id": "7", "had_lock": false, "had_resource": true,
                             "reason": "an orphan resource without a lock file"}],
                "skipped": skipped,
            })
        );
        live.abort().unwrap();
    }
}
