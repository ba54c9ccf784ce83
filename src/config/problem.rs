//! Problems found in a configuration, printed the way `signet check` promises:
//! `FILE:LINE: message`, or `zone NAME: message` for what belongs to a zone rather than a line.

use std::fmt;
use std::path::PathBuf;

/// Whether a problem makes the configuration unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is rejected.
    Error,
    /// The configuration is accepted, but the operator should look (printed with `warning:`).
    Warning,
}

/// One problem, with as much of its location as is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The configuration file.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`.
    pub line: Option<usize>,
    /// The zone the problem belongs to, in normalised form (`example.com.`).
    pub zone: Option<String>,
    /// What is wrong, and where possible what to do about it.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Problem {
    /// An error with no location; fill in the location with the builder methods.
    pub fn error(message: impl Into<String>) -> Problem {
        Problem {
            file: None,
            line: None,
            zone: None,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A warning with no location.
    pub fn warning(message: impl Into<String>) -> Problem {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(message)
        }
    }

    /// Sets the file.
    pub fn in_file(mut self, file: impl Into<PathBuf>) -> Problem {
        self.file = Some(file.into());
        self
    }

    /// Sets the line.
    pub fn at_line(mut self, line: usize) -> Problem {
        self.line = Some(line);
        self
    }

    /// Sets the zone.
    pub fn for_zone(mut self, zone: impl Into<String>) -> Problem {
        self.zone = Some(zone.into());
        self
    }

    /// Whether this is a warning rather than an error.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }
}

/// Zone names are shown as the operator usually writes them: without the trailing dot
/// (except for the root zone).
fn display_zone(zone: &str) -> &str {
    if zone.len() > 1 {
        zone.strip_suffix('.').unwrap_or(zone)
    } else {
        zone
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: ", file.display())?,
            (Some(file), None) if self.zone.is_none() => write!(f, "{}: ", file.display())?,
            (None, Some(line)) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if self.is_warning() {
            f.write_str("warning: ")?;
        }
        if let Some(zone) = &self.zone {
            write!(f, "zone {}: ", display_zone(zone))?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one run, sorted by line; `Display` prints one per line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Sorts by (line, zone) with line-less problems last, and drops exact duplicates.
    pub(crate) fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let key = |p: &Problem| (p.line.is_none(), p.line, p.zone.clone());
            key(a).cmp(&key(b))
        });
        self.0.dedup();
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let p = Problem::error("bad").in_file("a.toml").at_line(3);
        assert_eq!(p.to_string(), "a.toml:3: bad");
        let p = Problem::error("missing file")
            .in_file("a.toml")
            .for_zone("example.com.");
        assert_eq!(p.to_string(), "zone example.com: missing file");
        let p = Problem::warning("hmm")
            .in_file("a.toml")
            .at_line(7)
            .for_zone("example.com.");
        assert_eq!(p.to_string(), "a.toml:7: warning: zone example.com: hmm");
        let p = Problem::error("cannot read").in_file("a.toml");
        assert_eq!(p.to_string(), "a.toml: cannot read");
        let p = Problem::error("root").for_zone(".");
        assert_eq!(p.to_string(), "zone .: root");
    }
}
