//! Validators declared in the schema next to each attribute or nested
//! block, the way terraform-plugin-framework's `stringvalidator.OneOf`,
//! `int64validator.Between` and `ConflictsWith` are. The server runs them on
//! every ValidateResourceConfig (and provider and data source config) before
//! the provider's own cross-field checks, each diagnostic on the attribute's
//! path; their descriptions are appended to the attribute's description, so
//! `terraform providers schema -json`, editors and the generated docs all
//! state them.
//!
//! As in the framework, null values are not judged by value validators, and
//! unknown values (known only after apply) are not judged at all: a rule
//! about another attribute waits until that one is known too.

use std::fmt::Write as _;

use crate::diag::{AttrPath, Diagnostics};
use crate::schema::{AttrKind, Attribute, Block, NestedBlock, Nesting};
use crate::value::Value;

/// Checks a string's syntax: `Err` says what is wrong with it.
pub type FormatCheck = fn(&str) -> Result<(), String>;

/// One rule about an attribute's value, or about which attributes of the
/// same object may be set together. Sibling names refer to attributes or
/// nested blocks of the same object (the framework's
/// `path.MatchRelative().AtParent().AtName(...)`).
#[derive(Debug, Clone)]
pub enum Validator {
    /// The value is one of these (strings or numbers).
    OneOf(Vec<Value>),
    /// A whole number from `min` to `max`, inclusive.
    Between {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A string of `min` to `max` characters (Unicode scalar values).
    Length {
        /// Fewest characters.
        min: usize,
        /// Most characters.
        max: usize,
    },
    /// A list, set or map of `min` to `max` elements (`None`: no maximum).
    Size {
        /// Fewest elements.
        min: usize,
        /// Most elements, if bounded.
        max: Option<usize>,
    },
    /// Every element of a list or set passes the inner validator.
    Each(Box<Validator>),
    /// Every key of a map passes the inner (string) validator.
    Keys(Box<Validator>),
    /// A string `check` accepts, described as `what` ("a duration such as `30m`").
    Format {
        /// What a valid value is, for docs and diagnostics.
        what: &'static str,
        /// The check.
        check: FormatCheck,
    },
    /// When this is set, none of these siblings may be.
    ConflictsWith(Vec<String>),
    /// Exactly one of this and these siblings is set.
    ExactlyOneOf(Vec<String>),
    /// When this is set, all of these siblings must be too.
    AlsoRequires(Vec<String>),
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

impl Validator {
    /// One of these strings (`stringvalidator.OneOf`).
    pub fn one_of(values: &[&str]) -> Validator {
        Validator::OneOf(values.iter().map(|v| Value::string(*v)).collect())
    }

    /// One of these whole numbers (`int64validator.OneOf`).
    pub fn one_of_ints(values: &[i64]) -> Validator {
        Validator::OneOf(values.iter().map(|v| Value::int(*v)).collect())
    }

    /// A whole number in `min..=max` (`int64validator.Between`).
    pub fn between(min: i64, max: i64) -> Validator {
        Validator::Between { min, max }
    }

    /// A string of `min..=max` characters (`stringvalidator.LengthBetween`).
    pub fn length(min: usize, max: usize) -> Validator {
        Validator::Length { min, max }
    }

    /// At least `min` elements (`setvalidator.SizeAtLeast`).
    pub fn size_at_least(min: usize) -> Validator {
        Validator::Size { min, max: None }
    }

    /// `min..=max` elements (`setvalidator.SizeBetween`).
    pub fn size_between(min: usize, max: usize) -> Validator {
        Validator::Size {
            min,
            max: Some(max),
        }
    }

    /// Every element passes `inner` (`setvalidator.ValueStringsAre`).
    pub fn each(inner: Validator) -> Validator {
        Validator::Each(Box::new(inner))
    }

    /// Every map key passes `inner` (`mapvalidator.KeysAre`).
    pub fn keys(inner: Validator) -> Validator {
        Validator::Keys(Box::new(inner))
    }

    /// A string `check` accepts; `what` describes a valid one.
    pub fn format(what: &'static str, check: FormatCheck) -> Validator {
        Validator::Format { what, check }
    }

    /// Not together with any of these siblings (`ConflictsWith`).
    pub fn conflicts_with(siblings: &[&str]) -> Validator {
        Validator::ConflictsWith(names(siblings))
    }

    /// Exactly one of this and these siblings (`ExactlyOneOf`).
    pub fn exactly_one_of(siblings: &[&str]) -> Validator {
        Validator::ExactlyOneOf(names(siblings))
    }

    /// These siblings too, whenever this is set (`AlsoRequires`).
    pub fn also_requires(siblings: &[&str]) -> Validator {
        Validator::AlsoRequires(names(siblings))
    }

    /// The rule as a sentence about the attribute `name`, for descriptions
    /// and docs: "Must be between 1 and 10."
    pub fn describe(&self, name: &str) -> String {
        match self {
            Validator::Each(inner) => format!("Each element must {}.", inner.requirement()),
            Validator::Keys(inner) => format!("Each key must {}.", inner.requirement()),
            Validator::ConflictsWith(others) => format!("Conflicts with {}.", list(others, "and")),
            Validator::ExactlyOneOf(others) => {
                let mut all = vec![name.to_string()];
                all.extend(others.iter().cloned());
                format!("Exactly one of {} must be set.", list(&all, "and"))
            }
            Validator::AlsoRequires(others) => format!("Requires {}.", list(others, "and")),
            _ => format!("Must {}.", self.requirement()),
        }
    }

    /// What a value validator asks, as a verb phrase ("be one of: ...").
    fn requirement(&self) -> String {
        match self {
            Validator::OneOf(values) => {
                let shown: Vec<String> = values.iter().map(literal).collect();
                format!("be one of: {}", shown.join(", "))
            }
            Validator::Between { min, max } => format!("be a whole number from {min} to {max}"),
            Validator::Length { min, max } if *min == 0 => {
                format!("have at most {max} characters")
            }
            Validator::Length { min, max } => format!("have {min} to {max} characters"),
            Validator::Size { min, max: None } => {
                format!("have at least {min} element{}", plural(*min))
            }
            Validator::Size {
                min: 0,
                max: Some(max),
            } => format!("have at most {max} element{}", plural(*max)),
            Validator::Size {
                min,
                max: Some(max),
            } => format!("have {min} to {max} elements"),
            Validator::Format { what, .. } => format!("be {what}"),
            Validator::Each(inner) => format!("have elements that each {}", inner.requirement()),
            Validator::Keys(inner) => format!("have keys that each {}", inner.requirement()),
            Validator::ConflictsWith(_)
            | Validator::ExactlyOneOf(_)
            | Validator::AlsoRequires(_) => self.describe(""),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `a`, `b` and `c`
fn list(names: &[String], last_joint: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {last_joint} {last}", init.join(", ")),
    }
}

/// A value as written in HCL, in backticks: `"HTTP"`, `10`.
fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::Bool(b) => format!("`{b}`"),
        other => format!("`{other:?}`"),
    }
}

/// The description with every validator's sentence appended: what Terraform
/// (and so the docs) show for the attribute or block.
pub fn described(description: &str, name: &str, validators: &[Validator]) -> String {
    let mut out = description.trim_end().to_string();
    for v in validators {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&v.describe(name));
    }
    out
}

/// Runs every validator declared in `block` (and the blocks and nested
/// attributes below it) on a configuration; one diagnostic per problem,
/// each on its attribute path.
pub fn validate_block(block: &Block, config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    check_object(
        &block.attributes,
        &block.blocks,
        config,
        &AttrPath::default(),
        &mut d,
    );
    d
}

/// What a sibling name refers to, to tell "set" from "absent": a list or set
/// block with no elements is absent, as Terraform sends it as `[]`.
fn is_set(name: &str, blocks: &[NestedBlock], v: &Value) -> bool {
    let empty_block_list = blocks
        .iter()
        .any(|b| b.name == name && matches!(b.nesting, Nesting::List | Nesting::Set))
        && v.as_list().is_some_and(<[Value]>::is_empty);
    !v.is_null() && !empty_block_list
}

fn check_object(
    attributes: &[Attribute],
    blocks: &[NestedBlock],
    obj: &Value,
    at: &AttrPath,
    d: &mut Diagnostics,
) {
    if obj.as_map().is_none() {
        return;
    }
    let siblings = Siblings {
        obj,
        blocks,
        attributes,
    };
    for a in attributes {
        let v = obj.get(&a.name);
        let path = at.clone().attr(&a.name);
        for rule in &a.validators {
            siblings.check(rule, &a.name, v, &path, d);
        }
        if let AttrKind::Nested {
            attributes: inner,
            nesting,
        } = &a.kind
        {
            for_each_element(*nesting, v, &path, |e, p| {
                check_object(inner, &[], e, &p, d);
            });
        }
    }
    for b in blocks {
        let v = obj.get(&b.name);
        let path = at.clone().attr(&b.name);
        for rule in &b.validators {
            siblings.check(rule, &b.name, v, &path, d);
        }
        for_each_element(b.nesting, v, &path, |e, p| {
            check_object(&b.block.attributes, &b.block.blocks, e, &p, d);
        });
    }
}

/// Calls `f` with each object of a nested value and its path. Set elements
/// have no index Terraform could point at, so they share the set's path.
fn for_each_element(
    nesting: Nesting,
    v: &Value,
    path: &AttrPath,
    mut f: impl FnMut(&Value, AttrPath),
) {
    match (nesting, v) {
        (Nesting::Single | Nesting::Group, Value::Map(_)) => f(v, path.clone()),
        (Nesting::List, Value::List(items)) => {
            for (i, e) in items.iter().enumerate() {
                f(e, path.clone().index(i));
            }
        }
        (Nesting::Set, Value::List(items)) => {
            for e in items {
                f(e, path.clone());
            }
        }
        (Nesting::Map, Value::Map(m)) => {
            for (k, e) in m {
                f(e, path.clone().key(k));
            }
        }
        _ => {}
    }
}

/// The object an attribute sits in, for rules about its siblings.
struct Siblings<'a> {
    obj: &'a Value,
    blocks: &'a [NestedBlock],
    attributes: &'a [Attribute],
}

impl Siblings<'_> {
    fn set(&self, name: &str) -> bool {
        is_set(name, self.blocks, self.obj.get(name))
    }

    fn unknown(&self, name: &str) -> bool {
        self.obj.get(name).is_unknown()
    }

    /// Whether `name` is an attribute or block here; a validator naming
    /// anything else is a bug in the provider's schema, reported as such.
    fn exists(&self, name: &str) -> bool {
        self.attributes.iter().any(|a| a.name == name) || self.blocks.iter().any(|b| b.name == name)
    }

    fn check(&self, rule: &Validator, name: &str, v: &Value, path: &AttrPath, d: &mut Diagnostics) {
        let others = match rule {
            Validator::ConflictsWith(o)
            | Validator::ExactlyOneOf(o)
            | Validator::AlsoRequires(o) => o,
            _ => return check_value(rule, v, path, d),
        };
        if let Some(missing) = others.iter().find(|o| !self.exists(o)) {
            d.error_at(
                path.clone(),
                "Invalid provider schema",
                format!("A validator of `{name}` names `{missing}`, which is not next to it. This is a bug in the provider."),
            );
            return;
        }
        // Nothing is judged while a value it depends on is unknown.
        if v.is_unknown() || others.iter().any(|o| self.unknown(o)) {
            return;
        }
        let this_set = is_set(name, self.blocks, v);
        match rule {
            Validator::ConflictsWith(_) if this_set => {
                let set: Vec<String> = others.iter().filter(|o| self.set(o)).cloned().collect();
                if !set.is_empty() {
                    d.error_at(
                        path.clone(),
                        "Conflicting arguments",
                        format!("`{name}` cannot be set together with {}.", list(&set, "or")),
                    );
                }
            }
            Validator::AlsoRequires(_) if this_set => {
                let missing: Vec<String> =
                    others.iter().filter(|o| !self.set(o)).cloned().collect();
                if !missing.is_empty() {
                    d.error_at(
                        path.clone(),
                        "Missing required argument",
                        format!("`{name}` needs {} to be set too.", list(&missing, "and")),
                    );
                }
            }
            Validator::ExactlyOneOf(_) => {
                let mut all = vec![name.to_string()];
                all.extend(others.iter().cloned());
                let set: Vec<String> = all
                    .iter()
                    .filter(|n| if *n == name { this_set } else { self.set(n) })
                    .cloned()
                    .collect();
                match set.len() {
                    1 => {}
                    0 => d.error_at(
                        path.clone(),
                        "Missing argument",
                        format!("Exactly one of {} must be set; none is.", list(&all, "or")),
                    ),
                    _ => d.error_at(
                        path.clone(),
                        "Conflicting arguments",
                        format!(
                            "Exactly one of {} may be set; {} are.",
                            list(&all, "or"),
                            list(&set, "and")
                        ),
                    ),
                }
            }
            _ => {}
        }
    }
}

/// A value validator on one value: null and unknown pass (a required
/// attribute's absence is Terraform's own error).
fn check_value(rule: &Validator, v: &Value, path: &AttrPath, d: &mut Diagnostics) {
    if v.is_null() || v.is_unknown() {
        return;
    }
    let problem = match rule {
        Validator::OneOf(allowed) => (!allowed.contains(v)).then(|| {
            let mut p = format!(
                "{} is not allowed; it must {}.",
                shown(v),
                rule.requirement()
            );
            // A value that only differs in case is the commonest slip.
            if let Some(s) = v.as_str() {
                if let Some(hint) = allowed
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|a| a.eq_ignore_ascii_case(s))
                {
                    let _ = write!(p, " Did you mean {hint:?}?");
                }
            }
            p
        }),
        Validator::Between { min, max } => match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) if (*min..=*max).contains(&i) => None,
                Some(i) => Some(format!("Must be from {min} to {max}, got {i}.")),
                None => Some(format!(
                    "Must be a whole number from {min} to {max}, got {n}."
                )),
            },
            _ => None,
        },
        Validator::Length { min, max } => v.as_str().and_then(|s| {
            let n = s.chars().count();
            (!(*min..=*max).contains(&n))
                .then(|| format!("Must {}; this one has {n}.", rule.requirement()))
        }),
        Validator::Size { min, max } => {
            let n = match v {
                Value::List(items) => Some(items.len()),
                Value::Map(m) => Some(m.len()),
                _ => None,
            };
            n.filter(|n| n < min || max.is_some_and(|m| *n > m))
                .map(|n| format!("Must {}; got {n}.", rule.requirement()))
        }
        Validator::Format { what, check } => v
            .as_str()
            .and_then(|s| check(s).err())
            .map(|why| format!("{} is not {what}: {why}", shown(v))),
        // Elements are reported on the collection: a set element has no
        // index Terraform could point at, and the detail quotes the value.
        Validator::Each(inner) => {
            for e in v.as_list().unwrap_or(&[]) {
                check_value(inner, e, path, d);
            }
            None
        }
        Validator::Keys(inner) => {
            for k in v.as_map().into_iter().flat_map(|m| m.keys()) {
                check_value(inner, &Value::string(k), &path.clone().key(k), d);
            }
            None
        }
        Validator::ConflictsWith(_) | Validator::ExactlyOneOf(_) | Validator::AlsoRequires(_) => {
            None
        }
    };
    if let Some(detail) = problem {
        d.error_at(
            path.clone(),
            format!("Invalid {}", attribute_names(path)),
            detail,
        );
    }
}

/// The attribute names along a path, without indexes or keys
/// (`timeouts.create`, `rule.destination.account`): what the summary of a
/// value diagnostic names; Terraform shows the exact element beside it.
fn attribute_names(path: &AttrPath) -> String {
    path.0
        .iter()
        .filter_map(|s| match s {
            crate::diag::Step::Attr(a) => Some(a.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A value quoted for a diagnostic.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => "This value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, Block, NestedBlock, Schema};
    use crate::types::Type;

    fn s(x: &str) -> Value {
        Value::string(x)
    }

    /// (path, summary) of every finding.
    fn findings(block: &Block, config: &Value) -> Vec<(String, String)> {
        validate_block(block, config)
            .0
            .into_iter()
            .map(|d| (d.path.map(|p| p.to_string()).unwrap_or_default(), d.summary))
            .collect()
    }

    fn one(a: Attribute) -> Block {
        Block::new("test").attr(a)
    }

    #[test]
    fn one_of_accepts_listed_values_and_hints_at_case() {
        let b = one(Attribute::optional("type", Type::String, "Type.")
            .validate(Validator::one_of(&["HTTP", "TCP"])));
        assert!(findings(&b, &Value::object([("type", s("TCP"))])).is_empty());
        let d = validate_block(&b, &Value::object([("type", s("tcp"))]));
        assert_eq!(d.0[0].summary, "Invalid type");
        assert_eq!(d.0[0].path, Some(AttrPath::root("type")));
        assert!(
            d.0[0].detail.contains("`HTTP`, `TCP`") && d.0[0].detail.contains("\"TCP\"?"),
            "{}",
            d.0[0].detail
        );
        let ints = one(Attribute::optional("interval", Type::Number, "Seconds.")
            .validate(Validator::one_of_ints(&[10, 30])));
        assert!(findings(&ints, &Value::object([("interval", Value::int(30))])).is_empty());
        assert_eq!(
            findings(&ints, &Value::object([("interval", Value::int(20))])),
            vec![("interval".into(), "Invalid interval".into())]
        );
    }

    #[test]
    fn between_is_inclusive_and_wants_whole_numbers() {
        let b =
            one(Attribute::optional("n", Type::Number, "N.").validate(Validator::between(1, 10)));
        for ok in [1, 10] {
            assert!(findings(&b, &Value::object([("n", Value::int(ok))])).is_empty());
        }
        for bad in [0, 11] {
            assert_eq!(
                findings(&b, &Value::object([("n", Value::int(bad))])).len(),
                1
            );
        }
        let half = Value::Number(crate::Number::Float(1.5));
        let d = validate_block(&b, &Value::object([("n", half)]));
        assert!(d.0[0].detail.contains("whole number"), "{}", d.0[0].detail);
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let b =
            one(Attribute::optional("id", Type::String, "ID.").validate(Validator::length(1, 3)));
        assert!(findings(&b, &Value::object([("id", s("éèê"))])).is_empty());
        assert_eq!(findings(&b, &Value::object([("id", s(""))])).len(), 1);
        assert_eq!(findings(&b, &Value::object([("id", s("abcd"))])).len(), 1);
    }

    #[test]
    fn size_and_each_judge_collections_and_their_elements() {
        let b = one(
            Attribute::optional("regions", Type::set(Type::String), "Regions.")
                .validate(Validator::size_between(2, 3))
                .validate(Validator::each(Validator::one_of(&["a", "b", "c"]))),
        );
        let list = |xs: &[&str]| Value::List(xs.iter().map(|x| s(x)).collect());
        assert!(findings(&b, &Value::object([("regions", list(&["a", "b"]))])).is_empty());
        assert_eq!(
            findings(&b, &Value::object([("regions", list(&["a"]))])),
            vec![("regions".into(), "Invalid regions".into())]
        );
        let d = validate_block(&b, &Value::object([("regions", list(&["a", "z"]))]));
        assert_eq!(d.0.len(), 1);
        assert!(d.0[0].detail.starts_with("\"z\""), "{}", d.0[0].detail);
        // An unknown element is not judged; the known ones are.
        let partly = Value::List(vec![s("a"), Value::Unknown]);
        assert!(findings(&b, &Value::object([("regions", partly)])).is_empty());
    }

    #[test]
    fn keys_are_judged_each_at_its_own_path() {
        fn not_reserved(k: &str) -> Result<(), String> {
            if k.starts_with("aws:") {
                Err("reserved".into())
            } else {
                Ok(())
            }
        }
        let b = one(
            Attribute::optional("tags", Type::map(Type::String), "Tags.").validate(
                Validator::keys(Validator::format("a key of your own", not_reserved)),
            ),
        );
        let tags = Value::object([("aws:x", s("1")), ("env", s("2"))]);
        assert_eq!(
            findings(&b, &Value::object([("tags", tags)])),
            vec![("tags[\"aws:x\"]".into(), "Invalid tags".into())]
        );
    }

    #[test]
    fn format_reports_what_the_check_says() {
        fn hex(v: &str) -> Result<(), String> {
            if v.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(())
            } else {
                Err("only 0-9 and a-f".into())
            }
        }
        let b = one(Attribute::optional("digest", Type::String, "Digest.")
            .validate(Validator::format("a hexadecimal string", hex)));
        assert!(findings(&b, &Value::object([("digest", s("beef"))])).is_empty());
        let d = validate_block(&b, &Value::object([("digest", s("xyz"))]));
        assert_eq!(
            d.0[0].detail,
            "\"xyz\" is not a hexadecimal string: only 0-9 and a-f"
        );
    }

    fn target() -> Block {
        Block::new("test")
            .attr(
                Attribute::optional("records", Type::set(Type::String), "Values.")
                    .validate(Validator::exactly_one_of(&["alias"])),
            )
            .attr(
                Attribute::optional("ttl", Type::Number, "TTL.")
                    .validate(Validator::conflicts_with(&["alias"])),
            )
            .block(NestedBlock::single(
                "alias",
                Block::new("Alias.").attr(Attribute::required("name", Type::String, "Name.")),
            ))
    }

    #[test]
    fn exactly_one_of_and_conflicts_with_see_sibling_blocks() {
        let records = Value::List(vec![s("192.0.2.1")]);
        let alias = Value::object([("name", s("lb"))]);
        let obj = |r: Value, t: Value, a: Value| {
            Value::object([("records", r), ("ttl", t), ("alias", a)])
        };
        assert!(findings(
            &target(),
            &obj(records.clone(), Value::int(60), Value::Null)
        )
        .is_empty());
        assert!(findings(&target(), &obj(Value::Null, Value::Null, alias.clone())).is_empty());
        assert_eq!(
            findings(
                &target(),
                &obj(records.clone(), Value::int(60), alias.clone())
            ),
            vec![
                ("records".into(), "Conflicting arguments".into()),
                ("ttl".into(), "Conflicting arguments".into()),
            ]
        );
        assert_eq!(
            findings(&target(), &obj(Value::Null, Value::Null, Value::Null)),
            vec![("records".into(), "Missing argument".into())]
        );
    }

    #[test]
    fn unknowns_are_never_judged() {
        let alias = Value::object([("name", s("lb"))]);
        let c = Value::object([
            ("records", Value::Unknown),
            ("ttl", Value::int(60)),
            ("alias", Value::Unknown),
        ]);
        assert!(findings(&target(), &c).is_empty());
        let c = Value::object([
            ("records", Value::Unknown),
            ("ttl", Value::Null),
            ("alias", alias),
        ]);
        assert!(findings(&target(), &c).is_empty());
    }

    #[test]
    fn also_requires_names_what_is_missing() {
        let b = Block::new("test")
            .attr(
                Attribute::optional("access_key", Type::String, "Key.")
                    .validate(Validator::also_requires(&["secret_key"])),
            )
            .attr(Attribute::optional("secret_key", Type::String, "Secret."));
        let d = validate_block(&b, &Value::object([("access_key", s("AKIA"))]));
        assert_eq!(d.0[0].path, Some(AttrPath::root("access_key")));
        assert_eq!(
            d.0[0].detail,
            "`access_key` needs `secret_key` to be set too."
        );
        assert!(findings(&b, &Value::object([("secret_key", s("x"))])).is_empty());
    }

    #[test]
    fn rules_inside_list_blocks_point_at_each_element() {
        let b = Block::new("test").block(NestedBlock::list(
            "rule",
            Block::new("Rule.")
                .attr(
                    Attribute::required("priority", Type::Number, "Priority.")
                        .validate(Validator::between(0, 1000)),
                )
                .block(
                    NestedBlock::single(
                        "translation",
                        Block::new("Owner override.").attr(Attribute::required(
                            "owner",
                            Type::String,
                            "Owner.",
                        )),
                    )
                    .validate(Validator::also_requires(&["account"])),
                )
                .attr(Attribute::optional("account", Type::String, "Account.")),
        ));
        let rule = |p: i64, translation: bool| {
            Value::object([
                ("priority", Value::int(p)),
                (
                    "translation",
                    if translation {
                        Value::object([("owner", s("Destination"))])
                    } else {
                        Value::Null
                    },
                ),
                ("account", Value::Null),
            ])
        };
        let c = Value::object([("rule", Value::List(vec![rule(1, false), rule(-1, true)]))]);
        assert_eq!(
            findings(&b, &c),
            vec![
                ("rule[1].priority".into(), "Invalid rule.priority".into()),
                (
                    "rule[1].translation".into(),
                    "Missing required argument".into()
                ),
            ]
        );
    }

    #[test]
    fn a_rule_naming_no_sibling_is_a_schema_bug_not_a_pass() {
        let b = one(Attribute::optional("a", Type::String, "A.")
            .validate(Validator::conflicts_with(&["b"])));
        let d = validate_block(&b, &Value::object([("a", s("x"))]));
        assert_eq!(d.0[0].summary, "Invalid provider schema");
    }

    #[test]
    fn descriptions_state_every_rule() {
        let schema = Schema::new(target().attr(
            Attribute::optional("n", Type::Number, "How many.").validate(Validator::between(1, 10)),
        ));
        let p = schema.to_proto().block.unwrap();
        let desc = |n: &str| {
            p.attributes
                .iter()
                .find(|a| a.name == n)
                .map(|a| a.description.clone())
                .unwrap()
        };
        assert_eq!(desc("n"), "How many. Must be a whole number from 1 to 10.");
        assert_eq!(
            desc("records"),
            "Values. Exactly one of `records` and `alias` must be set."
        );
        assert_eq!(desc("ttl"), "TTL. Conflicts with `alias`.");
        assert_eq!(
            Validator::one_of(&["A", "B"]).describe("x"),
            "Must be one of: `A`, `B`."
        );
        assert_eq!(
            Validator::each(Validator::one_of(&["a"])).describe("x"),
            "Each element must be one of: `a`."
        );
        assert_eq!(
            Validator::length(0, 255).describe("x"),
            "Must have at most 255 characters."
        );
        assert_eq!(
            Validator::size_at_least(3).describe("x"),
            "Must have at least 3 elements."
        );
        assert_eq!(
            Validator::size_between(0, 256).describe("x"),
            "Must have at most 256 elements."
        );
        assert_eq!(
            Validator::also_requires(&["a", "b"]).describe("x"),
            "Requires `a` and `b`."
        );
    }
}
