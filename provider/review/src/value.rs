//! Reading the two sides of a change at an attribute path, with what is
//! unknown until apply and what is sensitive, and the attribute diff of a
//! whole change. Sensitive values are in the JSON plan in clear; nothing
//! here ever lets one out.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde_json::Value as Json;

use crate::plan::Change;

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// An attribute, block or map key.
    Key(String),
    /// A list element.
    Index(usize),
}

/// An attribute path, e.g. `rule[0].filter.prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Step>);

impl Path {
    /// A path of attribute names.
    pub fn keys(keys: &[&str]) -> Path {
        Path(keys.iter().map(|k| Step::Key((*k).to_string())).collect())
    }

    /// This path with one more attribute name.
    pub fn key(&self, k: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Step::Key(k.to_string()));
        p
    }

    /// This path with one more list index.
    pub fn index(&self, i: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Step::Index(i));
        p
    }

    /// Whether `self` is `prefix` or lies under it.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// A path from `replace_paths`: strings are keys, numbers indexes.
    pub fn from_json(steps: &[Json]) -> Path {
        Path(
            steps
                .iter()
                .map(|s| match s {
                    Json::Number(n) => Step::Index(n.as_u64().unwrap_or(0) as usize),
                    Json::String(k) => Step::Key(k.clone()),
                    other => Step::Key(other.to_string()),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Key(k) if i == 0 => f.write_str(k)?,
                Step::Key(k) if is_identifier(k) => write!(f, ".{k}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn is_identifier(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn get<'a>(v: &'a Json, step: &Step) -> Option<&'a Json> {
    match (step, v) {
        (Step::Key(k), Json::Object(m)) => m.get(k),
        (Step::Index(i), Json::Array(a)) => a.get(*i),
        _ => None,
    }
}

/// Whether a marker structure (`after_unknown`, `*_sensitive`) is `true` at
/// `path` or at any step above it.
fn marked(marks: &Json, path: &Path) -> bool {
    let mut m = marks;
    for s in &path.0 {
        if m == &Json::Bool(true) {
            return true;
        }
        match get(m, s) {
            Some(next) => m = next,
            None => return false,
        }
    }
    m == &Json::Bool(true)
}

/// Whether anything at or under `path` is marked: a whole structure shown
/// as one value must be hidden when any part of it is sensitive.
fn marked_within(marks: &Json, path: &Path) -> bool {
    fn any_true(m: &Json) -> bool {
        match m {
            Json::Bool(b) => *b,
            Json::Array(a) => a.iter().any(any_true),
            Json::Object(o) => o.values().any(any_true),
            _ => false,
        }
    }
    marked(marks, path)
        || path
            .0
            .iter()
            .try_fold(marks, |m, s| get(m, s))
            .is_some_and(any_true)
}

/// What one side of a change holds at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// Nothing there (or null).
    Null,
    /// A value, safe to show.
    Known(Json),
    /// Known only after apply.
    Unknown,
    /// A sensitive value: it exists, but is never shown.
    Sensitive,
}

impl Shown {
    /// The value, if known and not sensitive.
    pub fn known(&self) -> Option<&Json> {
        match self {
            Shown::Known(v) => Some(v),
            _ => None,
        }
    }

    /// Null or absent.
    pub fn is_null(&self) -> bool {
        matches!(self, Shown::Null)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Null => f.write_str("null"),
            Shown::Known(v) => write!(f, "{v}"),
            Shown::Unknown => f.write_str("(known after apply)"),
            Shown::Sensitive => f.write_str("(sensitive value)"),
        }
    }
}

impl Serialize for Shown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut m = s.serialize_map(Some(2))?;
        match self {
            Shown::Null => m.serialize_entry("kind", "null")?,
            Shown::Known(v) => {
                m.serialize_entry("kind", "known")?;
                m.serialize_entry("value", v)?;
            }
            Shown::Unknown => m.serialize_entry("kind", "unknown")?,
            Shown::Sensitive => m.serialize_entry("kind", "sensitive")?,
        }
        m.end()
    }
}

impl Change {
    /// The value before the change at `path`.
    pub fn before_at(&self, path: &Path) -> Shown {
        shown(&self.before, None, &self.before_sensitive, path)
    }

    /// The planned value at `path`, `Unknown` where Terraform knows it only
    /// after apply.
    pub fn after_at(&self, path: &Path) -> Shown {
        shown(
            &self.after,
            Some(&self.after_unknown),
            &self.after_sensitive,
            path,
        )
    }

    /// The path of a nested block of one element, whichever way the schema
    /// nests it: an object (single nesting) or a list of one (a list block
    /// with at most one item).
    pub fn block(&self, parent: &Path, name: &str) -> Path {
        let p = parent.key(name);
        let is_list = |v: &Json| {
            p.0.iter()
                .try_fold(v, |v, s| get(v, s))
                .is_some_and(Json::is_array)
        };
        if is_list(&self.before) || is_list(&self.after) {
            p.index(0)
        } else {
            p
        }
    }

    /// Every attribute that differs between before and after, leaves only,
    /// sorted by path; lists of plain values are one leaf.
    pub fn diff(&self) -> Vec<AttrChange> {
        let mut out = Vec::new();
        walk(self, &Path::default(), &mut out);
        out
    }

    /// The paths whose change forces the replacement.
    pub fn replace_paths(&self) -> Vec<Path> {
        self.replace_paths
            .iter()
            .map(|p| Path::from_json(p))
            .collect()
    }
}

fn shown(value: &Json, unknown: Option<&Json>, sensitive: &Json, path: &Path) -> Shown {
    // A structure partly unknown is shown as unknown as a whole: its known
    // part alone would read as the complete value.
    if unknown.is_some_and(|u| marked_within(u, path)) {
        return Shown::Unknown;
    }
    let v = path.0.iter().try_fold(value, |v, s| get(v, s));
    match v {
        None | Some(Json::Null) => Shown::Null,
        Some(_) if marked_within(sensitive, path) => Shown::Sensitive,
        Some(v) => Shown::Known(v.clone()),
    }
}

/// One changed attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrChange {
    /// Where.
    pub path: Path,
    /// Before the change.
    pub before: Shown,
    /// After it.
    pub after: Shown,
}

impl fmt::Display for AttrChange {
    /// Unified-diff lines: `- path = before` and `+ path = after`, each
    /// only when that side holds something.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        if !self.before.is_null() {
            let _ = writeln!(s, "- {} = {}", self.path, self.before);
        }
        if !self.after.is_null() {
            let _ = writeln!(s, "+ {} = {}", self.path, self.after);
        }
        f.write_str(s.trim_end())
    }
}

fn children(v: Option<&Json>) -> Vec<Step> {
    match v {
        Some(Json::Object(m)) => m.keys().map(|k| Step::Key(k.clone())).collect(),
        Some(Json::Array(a)) => (0..a.len()).map(Step::Index).collect(),
        _ => Vec::new(),
    }
}

/// A structure worth descending into: an object, or a list holding one.
/// A list of plain values reads better as one value.
fn is_structure(v: Option<&Json>) -> bool {
    match v {
        Some(Json::Object(_)) => true,
        Some(Json::Array(a)) => a.iter().any(|x| x.is_object() || x.is_array()),
        _ => false,
    }
}

fn walk(c: &Change, path: &Path, out: &mut Vec<AttrChange>) {
    let at = |v: &Json| path.0.iter().try_fold(v, |v, s| get(v, s)).cloned();
    let (b, a) = (at(&c.before), at(&c.after));
    let unknown_here = marked(&c.after_unknown, path);
    let u = path
        .0
        .iter()
        .try_fold(&c.after_unknown, |v, s| get(v, s))
        .cloned();
    // A value of another kind on one side (a scalar, a list of scalars, an
    // empty list) makes this path one leaf.
    let plain = |v: &Option<Json>| {
        v.as_ref()
            .is_some_and(|v| !v.is_null() && !is_structure(Some(v)))
    };
    let descend = !unknown_here
        && (is_structure(b.as_ref()) || is_structure(a.as_ref()) || is_structure(u.as_ref()))
        && !plain(&b)
        && !plain(&a);
    if descend {
        let mut steps = children(b.as_ref());
        steps.extend(children(a.as_ref()));
        // Unknown leaves are absent from `after` and only named here.
        if u.as_ref().is_some_and(Json::is_object) {
            steps.extend(children(u.as_ref()));
        }
        steps.sort();
        steps.dedup();
        for s in steps {
            let mut p = path.clone();
            p.0.push(s);
            walk(c, &p, out);
        }
        return;
    }
    let before = c.before_at(path);
    let after = c.after_at(path);
    let differs = match (&before, &after) {
        (_, Shown::Unknown) => true,
        // Compare the hidden values, show neither.
        (Shown::Sensitive, _) | (_, Shown::Sensitive) => b != a,
        (x, y) => x != y,
    };
    if differs && !path.0.is_empty() {
        out.push(AttrChange {
            path: path.clone(),
            before,
            after,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(before: Json, after: Json, unknown: Json, bs: Json, a_s: Json) -> Change {
        serde_json::from_value(json!({
            "actions": ["update"], "before": before, "after": after,
            "after_unknown": unknown, "before_sensitive": bs, "after_sensitive": a_s
        }))
        .unwrap()
    }

    #[test]
    fn unknown_after_apply_is_not_null() {
        let c = change(
            json!({"primary": {"health_check_id": "hc1", "records": ["1.1.1.1"]}}),
            json!({"primary": {"records": ["1.1.1.1"]}}),
            json!({"primary": {"health_check_id": true}}),
            json!({}),
            json!({}),
        );
        let p = Path::keys(&["primary", "health_check_id"]);
        assert_eq!(c.after_at(&p), Shown::Unknown);
        assert_eq!(c.before_at(&p), Shown::Known(json!("hc1")));
        let d = c.diff();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            d[0].to_string(),
            "- primary.health_check_id = \"hc1\"\n+ primary.health_check_id = (known after apply)"
        );
    }

    #[test]
    fn sensitive_values_differ_but_never_show() {
        let c = change(
            json!({"token": "old-secret", "ttl": 60}),
            json!({"token": "new-secret", "ttl": 60}),
            json!({}),
            json!({"token": true}),
            json!({"token": true}),
        );
        let d = c.diff();
        assert_eq!(d.len(), 1);
        let shown = d[0].to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("(sensitive value)"));
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("secret"), "{json}");
        // A whole list shown as one value hides it when any part is sensitive.
        let nested = change(
            json!({"creds": [{"key": "AKIA1"}]}),
            json!({"creds": []}),
            json!({}),
            json!({"creds": [{"key": true}]}),
            json!({}),
        );
        let shown: Vec<String> = nested.diff().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["- creds = (sensitive value)\n+ creds = []"]);
    }

    #[test]
    fn blocks_are_found_as_objects_or_lists_of_one_and_paths_print_like_terraform() {
        let c = change(
            json!({"rule": [{"id": "a", "filter": [{"prefix": "", "tags": {"k v": "1"}}]}]}),
            json!({"rule": [{"id": "a", "filter": [{"prefix": "img/", "tags": {"k v": "1"}}]}]}),
            json!({}),
            json!({}),
            json!({}),
        );
        let rule = Path::keys(&["rule"]).index(0);
        let filter = c.block(&rule, "filter");
        assert_eq!(filter.to_string(), "rule[0].filter[0]");
        assert_eq!(
            filter.key("tags").key("k v").to_string(),
            "rule[0].filter[0].tags[\"k v\"]"
        );
        let d = c.diff();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].path.to_string(), "rule[0].filter[0].prefix");
        let single = change(
            json!({"primary": {"ttl": 1}}),
            json!({}),
            json!({}),
            json!({}),
            json!({}),
        );
        assert_eq!(
            single.block(&Path::default(), "primary").to_string(),
            "primary"
        );
    }

    #[test]
    fn lists_of_plain_values_are_one_leaf_and_creates_show_one_side() {
        let c = change(
            Json::Null,
            json!({"records": ["a", "b"], "id": null}),
            json!({"id": true}),
            json!(false),
            json!({}),
        );
        let d: Vec<String> = c.diff().iter().map(ToString::to_string).collect();
        assert_eq!(
            d,
            ["+ id = (known after apply)", "+ records = [\"a\",\"b\"]"]
        );
    }
}
