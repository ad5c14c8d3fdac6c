//! Route 53: hosted zones, health checks and atomic failover record sets.
//!
//! One file per resource (`zone.rs`, `health_check.rs`,
//! `failover_record.rs`); AWS access goes through `find.rs` (lookups that
//! return not-found as a value), `snapshot.rs` (one listing per zone and
//! run, shared by every read) and `wait.rs` (bounded waits and writes).

pub mod error;
pub mod failover_record;
pub mod find;
pub mod health_check;
pub mod names;
pub mod snapshot;
pub mod txt;
pub mod wait;
pub mod zone;

use std::sync::Arc;
use std::time::Duration;

use tfplugin6::{AttrPath, DataSource, Plan, Resource, Value};

use crate::aws::Aws;

pub use error::Route53Error;

/// Route 53 resource types.
pub fn resources() -> Vec<Arc<dyn Resource<Aws>>> {
    vec![
        Arc::new(zone::ZoneResource),
        Arc::new(health_check::HealthCheckResource),
        Arc::new(failover_record::FailoverRecordResource),
    ]
}

/// Route 53 data source types.
pub fn data_sources() -> Vec<Arc<dyn DataSource<Aws>>> {
    vec![Arc::new(zone::ZoneDataSource)]
}

pub(crate) use crate::aws::tags::{plan_tags_all, tags_all_attribute, tags_attribute, tags_state};

/// When the configured name only differs cosmetically from the prior one
/// (case, trailing dot, `\052`), plans the prior spelling: Terraform accepts
/// a planned value equal to the prior state as "functionally equal".
pub(crate) fn keep_prior_spelling(plan: &mut Plan, path: &[&str]) {
    let get = |v: &Value| -> Option<String> {
        let mut cur = v;
        for p in path {
            cur = cur.get(p);
        }
        cur.as_str().map(str::to_string)
    };
    let (Some(prior), Some(config)) = (get(&plan.prior), get(&plan.config)) else {
        return;
    };
    if prior != config && names::same(&prior, &config) {
        set_path(&mut plan.planned, path, Value::String(prior));
    }
}

/// Sets a nested attribute; does nothing when a step is not an object.
pub(crate) fn set_path(v: &mut Value, path: &[&str], new: Value) {
    match path {
        [] => {}
        [last] => v.set(last, new),
        [first, rest @ ..] => {
            if let Some(inner) = v.get_mut(first) {
                if inner.as_map().is_some() {
                    set_path(inner, rest, new);
                }
            }
        }
    }
}

/// Marks the plan as a replacement when any of `attrs` changes, and makes
/// the computed attributes in `recompute` unknown (unless configured):
/// the new object gets new values.
pub(crate) fn replace_if_changed(plan: &mut Plan, attrs: &[&str], recompute: &[&str]) {
    if plan.is_create() {
        return;
    }
    let mut any = false;
    for a in attrs {
        if plan.prior.get(a) != plan.planned.get(a) {
            let p = AttrPath::root(a);
            if !plan.requires_replace.contains(&p) {
                plan.requires_replace.push(p);
            }
            any = true;
        }
    }
    if any || !plan.requires_replace.is_empty() {
        for r in recompute {
            if plan.config.get(r).is_null() {
                plan.planned.set(r, Value::Unknown);
            }
        }
    }
}

/// Parses a Terraform-style duration (`30m`, `1h30m`, `45s`, `2h`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'h' => 3600,
            's' => 1,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                // Milliseconds round up to a whole second.
                total = total.checked_add(n.div_ceil(1000))?;
                continue;
            }
            'm' => 60,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !num.is_empty() {
        return None;
    }
    Some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_terraform() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("ten minutes"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn cosmetic_name_change_keeps_prior_spelling() {
        let prior = Value::object([("name", Value::string("example.com"))]);
        let config = Value::object([("name", Value::string("Example.COM."))]);
        let mut plan = Plan {
            prior: prior.clone(),
            config: config.clone(),
            planned: config,
            requires_replace: vec![],
            private: vec![],
        };
        keep_prior_spelling(&mut plan, &["name"]);
        replace_if_changed(&mut plan, &["name"], &["id"]);
        assert_eq!(plan.planned.get("name"), &Value::string("example.com"));
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn real_name_change_replaces() {
        let prior = Value::object([
            ("name", Value::string("a.com")),
            ("id", Value::string("Z1")),
        ]);
        let config = Value::object([("name", Value::string("b.com")), ("id", Value::Null)]);
        let mut plan = Plan {
            prior: prior.clone(),
            config: config.clone(),
            planned: Value::object([
                ("name", Value::string("b.com")),
                ("id", Value::string("Z1")),
            ]),
            requires_replace: vec![],
            private: vec![],
        };
        keep_prior_spelling(&mut plan, &["name"]);
        replace_if_changed(&mut plan, &["name"], &["id"]);
        assert_eq!(plan.requires_replace, vec![AttrPath::root("name")]);
        assert_eq!(plan.planned.get("id"), &Value::Unknown);
    }
}
