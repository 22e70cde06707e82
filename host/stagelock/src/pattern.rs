//! Lock-file names from a pattern, following Go's `os.CreateTemp` rules.

use std::fmt::Write;

/// A validated pattern: the random part goes between `prefix` and `suffix`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pattern<'a> {
    prefix: &'a str,
    suffix: &'a str,
}

/// Why a pattern was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// The pattern contains `/`: names are created in the given directory only.
    Separator,
    /// The pattern contains a NUL byte, which no file name can hold.
    Nul,
}

impl PatternError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            PatternError::Separator => "pattern contains a path separator",
            PatternError::Nul => "pattern contains a NUL byte",
        }
    }
}

impl<'a> Pattern<'a> {
    /// Splits `pattern` at its **last** `*`; with no `*`, the random part is appended.
    pub(crate) fn parse(pattern: &'a str) -> Result<Self, PatternError> {
        if pattern.contains('/') {
            return Err(PatternError::Separator);
        }
        if pattern.contains('\0') {
            return Err(PatternError::Nul);
        }
        Ok(match pattern.rfind('*') {
            Some(star) => Pattern {
                prefix: &pattern[..star],
                suffix: &pattern[star + 1..],
            },
            None => Pattern {
                prefix: pattern,
                suffix: "",
            },
        })
    }

    /// Writes the name for random value `n` into `out` (cleared first), reusing its allocation.
    pub(crate) fn write_name(&self, n: u32, out: &mut String) {
        out.clear();
        out.push_str(self.prefix);
        write!(out, "{n}").expect("writing to a String cannot fail");
        out.push_str(self.suffix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(pattern: &str, n: u32) -> String {
        let mut out = String::from("stale");
        Pattern::parse(pattern).unwrap().write_name(n, &mut out);
        out
    }

    #[test]
    fn random_part_replaces_the_last_star_or_is_appended() {
        assert_eq!(name("lock-", 42), "lock-42");
        assert_eq!(name("lock-*", 42), "lock-42");
        assert_eq!(name("a*b*c", 7), "a*b7c");
        assert_eq!(name("*.lock", 7), "7.lock");
        assert_eq!(name("", 4294967295), "4294967295");
        assert_eq!(name("ü-*-ü", 1), "ü-1-ü");
    }

    #[test]
    fn separators_and_nul_are_refused() {
        assert_eq!(Pattern::parse("a/b*").unwrap_err(), PatternError::Separator);
        assert_eq!(Pattern::parse("/*").unwrap_err(), PatternError::Separator);
        assert_eq!(
            Pattern::parse("../x*").unwrap_err(),
            PatternError::Separator
        );
        assert_eq!(Pattern::parse("a\0*").unwrap_err(), PatternError::Nul);
    }
}
