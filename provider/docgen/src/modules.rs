//! The Inputs and Outputs tables of each module's README, generated from
//! its `variables.tf` and `outputs.tf` between the markers
//! `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->` (terraform-docs'
//! markers; terraform-docs itself is in no registry this repo may use).
//!
//! The `.tf` files are read by a small HCL reader of our own that knows
//! exactly what the tables need: the top-level `variable` and `output`
//! blocks and, in each, the attributes `description`, `type`, `default` and
//! `sensitive`. Strings (with `${...}` templates), heredocs, comments and
//! nested blocks (`validation`, `precondition`) are skipped correctly;
//! anything else the reader does not understand is an error naming the
//! file and line, never a silently wrong table.
//!
//! Limits, by design: `type` is shown as written with every `object({...})`
//! and `tuple([...])` shortened to `object`/`tuple` (the description says
//! what the fields are); `default` is shown as written, whitespace
//! collapsed; a description must be a plain string literal.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the generated part of a README starts.
pub const BEGIN: &str = "<!-- BEGIN_TF_DOCS -->";
/// Where it ends.
pub const END: &str = "<!-- END_TF_DOCS -->";

/// Errors reading a module or its README.
#[derive(Debug, thiserror::Error)]
pub enum ModuleDocError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HCL reader met something it does not handle.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// A description that is not a plain string literal.
    #[error("{path}: {what}: the description must be a plain string literal")]
    NotLiteral {
        /// The file.
        path: PathBuf,
        /// The block, e.g. `variable tags`.
        what: String,
    },
    /// The README has no place for the tables.
    #[error("{0}: needs the markers {BEGIN} and {END} (in that order, each once) where the Inputs and Outputs tables go")]
    Markers(PathBuf),
}

/// One `variable` block, as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// Its description, or empty.
    pub description: String,
    /// Its type, shortened (see the module docs); `any` when unset.
    pub ty: String,
    /// Its default as written, or None when it is required.
    pub default: Option<String>,
    /// `sensitive = true`.
    pub sensitive: bool,
}

/// One `output` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The output's name.
    pub name: String,
    /// Its description, or empty.
    pub description: String,
    /// `sensitive = true`.
    pub sensitive: bool,
}

/// A top-level block: its type, its one label, and its attributes as raw
/// expression text.
#[derive(Debug)]
struct Block {
    kind: String,
    label: String,
    attrs: Vec<(String, String)>,
}

/// A cursor over HCL source.
struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn err(&self, message: impl Into<String>) -> ModuleDocError {
        let line = 1 + self.src[..self.pos.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        ModuleDocError::Syntax {
            path: self.path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn starts(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s.as_bytes())
    }

    /// Skips spaces, tabs and comments; newlines too when `newlines`.
    fn skip_blank(&mut self, newlines: bool) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'\n') if newlines => self.pos += 1,
                Some(b'#') => self.skip_line_comment(),
                Some(b'/') if self.starts("//") => self.skip_line_comment(),
                Some(b'/') if self.starts("/*") => {
                    let end = find(self.src, self.pos + 2, b"*/").unwrap_or(self.src.len());
                    self.pos = (end + 2).min(self.src.len());
                }
                _ => return,
            }
        }
    }

    fn skip_line_comment(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'\n' {
                return;
            }
            self.pos += 1;
        }
    }

    fn ident(&mut self) -> Result<String, ModuleDocError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if start == self.pos {
            return Err(self.err("expected a name"));
        }
        Ok(String::from_utf8_lossy(&self.src[start..self.pos]).into_owned())
    }

    /// Skips a quoted string (the cursor on its opening quote), templates
    /// and their nested strings included.
    fn skip_string(&mut self) -> Result<(), ModuleDocError> {
        let open = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            match b {
                b'\\' => self.pos += 2,
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'$' | b'%' if self.src.get(self.pos + 1) == Some(&b'{') => {
                    self.pos += 2;
                    self.skip_until_close(b'}')?;
                }
                b'\n' => break,
                _ => self.pos += 1,
            }
        }
        self.pos = open;
        Err(self.err("unterminated string"))
    }

    /// Skips a heredoc (the cursor on `<<`).
    fn skip_heredoc(&mut self) -> Result<(), ModuleDocError> {
        let open = self.pos;
        self.pos += 2;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let marker = self.ident()?;
        let mut line_start = match find(self.src, self.pos, b"\n") {
            Some(n) => n + 1,
            None => {
                self.pos = open;
                return Err(self.err("heredoc without a body"));
            }
        };
        loop {
            let end = find(self.src, line_start, b"\n").unwrap_or(self.src.len());
            let line = String::from_utf8_lossy(&self.src[line_start..end]);
            if line.trim() == marker {
                self.pos = end;
                return Ok(());
            }
            if end >= self.src.len() {
                self.pos = open;
                return Err(self.err(format!("heredoc {marker} is never closed")));
            }
            line_start = end + 1;
        }
    }

    /// Skips to just past the `close` that matches an already consumed
    /// opening bracket, over strings, heredocs, comments and nesting.
    fn skip_until_close(&mut self, close: u8) -> Result<(), ModuleDocError> {
        let open = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b'"' => self.skip_string()?,
                b'<' if self.starts("<<") && self.heredoc_follows() => self.skip_heredoc()?,
                b'#' => self.skip_line_comment(),
                b'/' if self.starts("//") || self.starts("/*") => self.skip_blank(false),
                b'{' | b'(' | b'[' => {
                    self.pos += 1;
                    self.skip_until_close(closing(b))?;
                }
                b'}' | b')' | b']' => {
                    if b != close {
                        return Err(self.err(format!(
                            "found {:?} where {:?} was expected",
                            b as char, close as char
                        )));
                    }
                    self.pos += 1;
                    return Ok(());
                }
                _ => self.pos += 1,
            }
        }
        self.pos = open;
        Err(self.err(format!("{:?} is never closed", opening(close) as char)))
    }

    /// `<<EOT` or `<<-EOT`, not a `<<` of something else.
    fn heredoc_follows(&self) -> bool {
        let mut i = self.pos + 2;
        if self.src.get(i) == Some(&b'-') {
            i += 1;
        }
        self.src
            .get(i)
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    }

    /// An attribute's expression: up to the newline that is outside any
    /// bracket, string or heredoc.
    fn expression(&mut self) -> Result<String, ModuleDocError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b'\n' | b'}' => break,
                b'#' => break,
                b'/' if self.starts("//") => break,
                b'"' => self.skip_string()?,
                b'<' if self.starts("<<") && self.heredoc_follows() => self.skip_heredoc()?,
                b'{' | b'(' | b'[' => {
                    self.pos += 1;
                    self.skip_until_close(closing(b))?;
                }
                _ => self.pos += 1,
            }
        }
        let text = String::from_utf8_lossy(&self.src[start..self.pos])
            .trim()
            .to_string();
        if text.is_empty() {
            return Err(self.err("expected an expression after ="));
        }
        Ok(text)
    }

    /// The attributes of a block body (the cursor after its `{`), nested
    /// blocks skipped; the cursor ends after the body's `}`.
    fn body(&mut self) -> Result<Vec<(String, String)>, ModuleDocError> {
        let mut attrs = Vec::new();
        loop {
            self.skip_blank(true);
            match self.peek() {
                None => return Err(self.err("block is never closed")),
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(attrs);
                }
                _ => {}
            }
            let name = self.ident()?;
            self.skip_blank(false);
            match self.peek() {
                Some(b'=') => {
                    self.pos += 1;
                    self.skip_blank(false);
                    attrs.push((name, self.expression()?));
                }
                _ => {
                    // A nested block: labels, then its body.
                    while self.peek() == Some(b'"') {
                        self.skip_string()?;
                        self.skip_blank(false);
                    }
                    if self.peek() != Some(b'{') {
                        return Err(self.err(format!("expected = or {{ after {name}")));
                    }
                    self.pos += 1;
                    self.skip_until_close(b'}')?;
                }
            }
        }
    }

    /// Every top-level block with one label.
    fn blocks(&mut self) -> Result<Vec<Block>, ModuleDocError> {
        let mut out = Vec::new();
        loop {
            self.skip_blank(true);
            if self.peek().is_none() {
                return Ok(out);
            }
            let kind = self.ident()?;
            self.skip_blank(false);
            let mut labels = Vec::new();
            while self.peek() == Some(b'"') {
                let start = self.pos + 1;
                self.skip_string()?;
                labels.push(String::from_utf8_lossy(&self.src[start..self.pos - 1]).into_owned());
                self.skip_blank(false);
            }
            if self.peek() != Some(b'{') {
                return Err(self.err(format!("expected {{ after {kind}")));
            }
            self.pos += 1;
            let attrs = self.body()?;
            if let [label] = labels.as_slice() {
                out.push(Block {
                    kind,
                    label: label.clone(),
                    attrs,
                });
            }
        }
    }
}

fn closing(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'(' => b')',
        _ => b']',
    }
}

fn opening(close: u8) -> u8 {
    match close {
        b'}' => b'{',
        b')' => b'(',
        _ => b'[',
    }
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The value of a string-literal or heredoc expression (a table cell
/// collapses its whitespace, so a heredoc's indentation does not matter).
fn string_literal(expr: &str, path: &Path, what: &str) -> Result<String, ModuleDocError> {
    if expr.starts_with("<<") {
        let lines: Vec<&str> = expr.lines().collect();
        if lines.len() >= 2 && !expr.contains("${") {
            return Ok(lines[1..lines.len() - 1].join("\n"));
        }
    }
    let inner = expr
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .filter(|i| !i.contains("${"))
        .ok_or_else(|| ModuleDocError::NotLiteral {
            path: path.to_path_buf(),
            what: what.to_string(),
        })?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `list(object({ a = string }))` → `list(object)`: an object's or tuple's
/// fields belong in the description, not in a table cell.
pub fn short_type(ty: &str) -> String {
    let ty: String = ty.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::new();
    let mut rest = ty.as_str();
    while let Some(i) = ["object(", "tuple("]
        .iter()
        .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
        .min()
    {
        let (at, klen) = i;
        out.push_str(&rest[..at + klen - 1]);
        // Skip the parenthesised fields, nesting included.
        let mut depth = 0;
        let mut end = rest.len();
        for (j, c) in rest[at + klen - 1..].char_indices() {
            match c {
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + klen - 1 + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn read(path: &Path) -> Result<String, ModuleDocError> {
    std::fs::read_to_string(path).map_err(|source| ModuleDocError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse(path: &Path, text: &str) -> Result<Vec<Block>, ModuleDocError> {
    Reader {
        src: text.as_bytes(),
        pos: 0,
        path,
    }
    .blocks()
}

fn attr<'b>(b: &'b Block, name: &str) -> Option<&'b str> {
    b.attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The variables of one `.tf` file's text, in declaration order.
pub fn variables(path: &Path, text: &str) -> Result<Vec<Variable>, ModuleDocError> {
    parse(path, text)?
        .into_iter()
        .filter(|b| b.kind == "variable")
        .map(|b| {
            let description = match attr(&b, "description") {
                Some(d) => string_literal(d, path, &format!("variable {}", b.label))?,
                None => String::new(),
            };
            Ok(Variable {
                description,
                ty: attr(&b, "type").map_or_else(|| "any".to_string(), short_type),
                default: attr(&b, "default")
                    .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
                sensitive: attr(&b, "sensitive") == Some("true"),
                name: b.label,
            })
        })
        .collect()
}

/// The outputs of one `.tf` file's text, in declaration order.
pub fn outputs(path: &Path, text: &str) -> Result<Vec<Output>, ModuleDocError> {
    parse(path, text)?
        .into_iter()
        .filter(|b| b.kind == "output")
        .map(|b| {
            let description = match attr(&b, "description") {
                Some(d) => string_literal(d, path, &format!("output {}", b.label))?,
                None => String::new(),
            };
            Ok(Output {
                description,
                sensitive: attr(&b, "sensitive") == Some("true"),
                name: b.label,
            })
        })
        .collect()
}

/// A table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The generated section (markers included) for these variables and
/// outputs.
pub fn render(vars: &[Variable], outs: &[Output]) -> String {
    let mut s = format!("{BEGIN}\n## Inputs\n\n");
    s.push_str("| Name | Description | Type | Default | Required |\n|---|---|---|---|:---:|\n");
    for v in vars {
        let sensitive = if v.sensitive { " (sensitive)" } else { "" };
        let _ = writeln!(
            s,
            "| `{}` | {}{sensitive} | `{}` | {} | {} |",
            v.name,
            cell(&v.description),
            cell(&v.ty),
            v.default
                .as_deref()
                .map_or_else(|| "n/a".to_string(), |d| format!("`{}`", cell(d))),
            if v.default.is_some() { "no" } else { "yes" },
        );
    }
    s.push_str("\n## Outputs\n\n| Name | Description |\n|---|---|\n");
    for o in outs {
        let sensitive = if o.sensitive { " (sensitive)" } else { "" };
        let _ = writeln!(s, "| `{}` | {}{sensitive} |", o.name, cell(&o.description));
    }
    s.push_str(END);
    s
}

/// Every `.tf` file of a module directory, sorted, tests and examples
/// left out (they are not the module's interface).
fn tf_files(dir: &Path) -> Result<Vec<PathBuf>, ModuleDocError> {
    let rd = std::fs::read_dir(dir).map_err(|source| ModuleDocError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    Ok(files)
}

/// A module's README with its generated section brought up to date, or an
/// error when the module or README cannot be read.
pub fn updated_readme(module: &Path) -> Result<(PathBuf, String, String), ModuleDocError> {
    let mut vars = Vec::new();
    let mut outs = Vec::new();
    for f in tf_files(module)? {
        let text = read(&f)?;
        vars.extend(variables(&f, &text)?);
        outs.extend(outputs(&f, &text)?);
    }
    let readme = module.join("README.md");
    let old = read(&readme)?;
    let (begin, end) = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e))
            if b < e && old.matches(BEGIN).count() == 1 && old.matches(END).count() == 1 =>
        {
            (b, e + END.len())
        }
        _ => return Err(ModuleDocError::Markers(readme)),
    };
    let new = format!("{}{}{}", &old[..begin], render(&vars, &outs), &old[end..]);
    Ok((readme, old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TF: &str = r#"
# a comment with "quotes" and { braces
variable "zone_id" {
  description = "ID of the \"zone\" | the name lives in."
  type        = string
}

variable "primary" {
  type = object({
    records = optional(list(string)) # a trailing comment
    alias   = optional(object({ name = string, zone_id = string }))
  })
  description = "Primary target."

  validation {
    condition     = length(var.primary.records) > 0 || var.primary.alias != null
    error_message = "primary needs records or alias (got ${jsonencode(var.primary)})."
  }
}

variable "tags" {
  description = <<-EOT
    Tags for
    the checks.
  EOT
  type    = map(string)
  default = {}
}

output "record_id" {
  description = "ID of the record set pair."
  value       = "${var.zone_id}/${join("/", ["a", "b"])}"
  sensitive   = true
}
"#;

    #[test]
    fn reads_variables_and_outputs_past_strings_comments_and_nested_blocks() {
        let p = Path::new("variables.tf");
        let templated = TF.replace("\"Primary target.\"", "\"${var.zone_id}\"");
        let err = variables(p, &templated).unwrap_err().to_string();
        assert_eq!(
            err,
            "variables.tf: variable primary: the description must be a plain string literal"
        );
        let tf = TF;
        let vars = variables(p, tf).unwrap();
        assert_eq!(
            vars,
            vec![
                Variable {
                    name: "zone_id".into(),
                    description: "ID of the \"zone\" | the name lives in.".into(),
                    ty: "string".into(),
                    default: None,
                    sensitive: false,
                },
                Variable {
                    name: "primary".into(),
                    description: "Primary target.".into(),
                    ty: "object".into(),
                    default: None,
                    sensitive: false,
                },
                Variable {
                    name: "tags".into(),
                    description: "    Tags for\n    the checks.".into(),
                    ty: "map(string)".into(),
                    default: Some("{}".into()),
                    sensitive: false,
                },
            ]
        );
        let outs = outputs(p, tf).unwrap();
        assert_eq!(
            outs,
            vec![Output {
                name: "record_id".into(),
                description: "ID of the record set pair.".into(),
                sensitive: true
            }]
        );
        let table = render(&vars, &outs);
        assert!(table.contains(
            "| `zone_id` | ID of the \"zone\" \\| the name lives in. | `string` | n/a | yes |"
        ));
        assert!(table.contains("| `tags` | Tags for the checks. | `map(string)` | `{}` | no |"));
        assert!(table.contains("| `record_id` | ID of the record set pair. (sensitive) |"));
        assert!(table.starts_with(BEGIN) && table.ends_with(END));
    }

    #[test]
    fn shortens_object_and_tuple_types() {
        assert_eq!(
            short_type("list(object({\n a = string\n b = optional(object({c = number}))\n}))"),
            "list(object)"
        );
        assert_eq!(short_type("map(tuple([string, number]))"), "map(tuple)");
        assert_eq!(short_type("set(string)"), "set(string)");
    }

    #[test]
    fn names_file_and_line_of_what_it_cannot_read() {
        let p = Path::new("outputs.tf");
        let err = outputs(p, "output \"a\" {\n  value = [1, 2\n}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("outputs.tf:"), "{err}");
        assert!(err.contains("'}'") || err.contains("never closed"), "{err}");
        let err = variables(p, "variable \"a\" {\n  description = \"open\n}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "outputs.tf:2: unterminated string");
    }
}
