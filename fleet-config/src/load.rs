//! Loading (YAML for people, JSON for machines, `${ENV}` interpolation for
//! secrets) and the canonical form the provider publishes, whose hash is
//! the `config_version` every proxy reports.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::types::FleetConfig;
use crate::validate::Problem;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `${NAME}` named a variable that is not set.
    #[error("line {line}: environment variable {name} is not set (referenced as ${{{name}}})")]
    MissingEnv {
        /// The variable.
        name: String,
        /// 1-based line.
        line: usize,
    },
    /// `${` without a closing `}` or with a bad name.
    #[error("line {line}: malformed ${{...}} reference: {text:?}")]
    BadReference {
        /// 1-based line.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// Not valid YAML/JSON for the schema (unknown field, wrong type...).
    #[error("{0}")]
    Parse(String),
    /// Parsed, but `validate()` found problems.
    #[error("{} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

/// The document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (a superset of JSON, so JSON files also load as YAML).
    Yaml,
    /// JSON.
    Json,
}

/// Replaces `${NAME}` with `lookup(NAME)`; `$${` writes a literal `${`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, LoadError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(pos) = rest.find("${") {
            if rest[..pos].ends_with('$') {
                out.push_str(&rest[..pos - 1]);
                out.push_str("${");
                rest = &rest[pos + 2..];
                continue;
            }
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            let end = after.find('}').ok_or_else(|| LoadError::BadReference {
                line: n + 1,
                text: rest[pos..].trim_end().to_string(),
            })?;
            let name = &after[..end];
            let name_ok =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !name_ok {
                return Err(LoadError::BadReference {
                    line: n + 1,
                    text: format!("${{{name}}}"),
                });
            }
            let value = lookup(name).ok_or_else(|| LoadError::MissingEnv {
                name: name.to_string(),
                line: n + 1,
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
}

impl FleetConfig {
    /// Parses a document without validating it.
    pub fn parse(text: &str, format: Format) -> Result<FleetConfig, LoadError> {
        match format {
            Format::Json => serde_json::from_str(text)
                .map_err(|e| LoadError::Parse(format!("line {}: {e}", e.line()))),
            Format::Yaml => {
                serde_yaml_ng::from_str(text).map_err(|e| LoadError::Parse(e.to_string()))
            }
        }
    }

    /// Interpolates from the process environment, parses and validates.
    pub fn load_str(text: &str, format: Format) -> Result<FleetConfig, LoadError> {
        let text = interpolate(text, |k| std::env::var(k).ok())?;
        let cfg = FleetConfig::parse(&text, format)?;
        cfg.check().map_err(LoadError::Invalid)?;
        Ok(cfg)
    }

    /// Loads a file; `.json` is JSON, anything else YAML.
    pub fn load_file(path: &Path) -> Result<FleetConfig, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let format = if path.extension().is_some_and(|e| e == "json") {
            Format::Json
        } else {
            Format::Yaml
        };
        FleetConfig::load_str(&text, format)
    }

    /// The canonical JSON document: every default written out, object keys
    /// sorted, no insignificant whitespace. Two configs that mean the same
    /// give the same bytes, whatever their source's key order or format.
    pub fn canonical_json(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let mut out = String::new();
        write_sorted(&mut out, &v);
        out
    }

    /// The content hash proxies report as `config_version`: the first 16
    /// hex digits of SHA-256 over [`FleetConfig::canonical_json`].
    pub fn config_version(&self) -> String {
        version_of(self.canonical_json().as_bytes())
    }
}

/// `config_version` of already canonical bytes.
pub fn version_of(canonical: &[u8]) -> String {
    let digest = Sha256::digest(canonical);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn write_sorted(out: &mut String, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                out.push(':');
                write_sorted(out, &m[k.as_str()]);
            }
            out.push('}');
        }
        serde_json::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(out, x);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
