//! Diagnostics: what a provider tells Terraform about problems, each tied to
//! the attribute it is about so Terraform can underline the right line.

use std::fmt;

/// One step into a value: an attribute, a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// An attribute or nested block name.
    Attr(String),
    /// A map key.
    Key(String),
    /// A list (or block list) index.
    Index(i64),
}

/// A path to an attribute, as Terraform prints it (`primary.records[0]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrPath(pub Vec<Step>);

impl AttrPath {
    /// The path to a top-level attribute.
    pub fn root(name: &str) -> AttrPath {
        AttrPath(vec![Step::Attr(name.to_string())])
    }

    /// This path extended by an attribute.
    pub fn attr(mut self, name: &str) -> AttrPath {
        self.0.push(Step::Attr(name.to_string()));
        self
    }

    /// This path extended by a list index.
    pub fn index(mut self, i: usize) -> AttrPath {
        self.0.push(Step::Index(i as i64));
        self
    }

    /// This path extended by a map key.
    pub fn key(mut self, k: &str) -> AttrPath {
        self.0.push(Step::Key(k.to_string()));
        self
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(a) if i == 0 => f.write_str(a)?,
                Step::Attr(a) => write!(f, ".{a}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Whether a diagnostic stops the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation went on; the user should know.
    Warning,
}

/// A problem or notice reported to Terraform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One line, shown in bold.
    pub summary: String,
    /// The explanation and, where possible, what to do.
    pub detail: String,
    /// The attribute it is about, if any.
    pub path: Option<AttrPath>,
}

impl Diagnostic {
    /// An error.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }

    /// A warning.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(summary, detail)
        }
    }

    /// The same diagnostic, tied to an attribute.
    pub fn at(mut self, path: AttrPath) -> Diagnostic {
        self.path = Some(path);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.summary)?;
        if let Some(p) = &self.path {
            write!(f, " (at {p})")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A list of diagnostics; also the error type of provider operations, so
/// `?` carries every problem, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }

    /// Adds one.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// Adds an error at a path.
    pub fn error_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic::error(summary, detail).at(path));
    }

    /// Adds a warning at a path.
    pub fn warn_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Diagnostic::warning(summary, detail).at(path));
    }

    /// Appends all of another list.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// True if any is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err(self)` when there are errors, else `Ok(())`; ends a validation
    /// that collected everything before failing.
    pub fn into_result(self) -> Result<(), Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok(())
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Diagnostics {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Renders an error and its chain of causes on one line, the way Terraform
/// users expect to read them. Never includes a backtrace.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let msg = s.to_string();
        // SDK errors often repeat their cause in their own message.
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_like_terraform() {
        let p = AttrPath::root("primary").attr("records").index(0);
        assert_eq!(p.to_string(), "primary.records[0]");
        assert_eq!(
            AttrPath::root("tags").key("env").to_string(),
            "tags[\"env\"]"
        );
    }

    #[test]
    fn warnings_alone_are_not_errors() {
        let mut d = Diagnostics::new();
        d.warn_at(AttrPath::root("a"), "careful", "");
        assert!(d.clone().into_result().is_ok());
        d.error_at(AttrPath::root("b"), "bad", "");
        assert!(d.into_result().is_err());
    }

    #[test]
    fn error_chain_joins_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
