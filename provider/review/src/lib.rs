//! Plan review for CI. Reads the JSON that `terraform show -json PLANFILE`
//! prints and finds the changes that are risky in a multi-region HA setup:
//! failover targets and health checks replaced or removed, replication
//! disabled or narrowed, versioning suspended, a proxy fleet losing a
//! replica or a bucket route, and destroys of anything stateful.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::Deserialize;
use serde_json::Value as Json;

/// How risky a finding is. Ordered, so `--fail-on` can compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    /// Worth a look.
    Low,
    /// Changes availability behaviour; review carefully.
    Medium,
    /// Can cause an outage or data loss.
    High,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        })
    }
}

impl FromStr for Risk {
    type Err = ReviewError;
    fn from_str(s: &str) -> Result<Risk, ReviewError> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Risk::Low),
            "medium" => Ok(Risk::Medium),
            "high" => Ok(Risk::High),
            _ => Err(ReviewError::BadRisk(s.to_string())),
        }
    }
}

/// Errors reading a plan.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not the JSON `terraform show -json` prints.
    #[error("not a Terraform JSON plan: {0}")]
    Json(#[from] serde_json::Error),
    /// An unknown risk level name.
    #[error("unknown risk level {0:?} (use low, medium or high)")]
    BadRisk(String),
}

/// The parts of the JSON plan format we read.
#[derive(Debug, Deserialize)]
pub struct PlanJson {
    /// Planned changes per resource instance.
    #[serde(default)]
    pub resource_changes: Vec<ResourceChange>,
}

/// One resource instance's planned change.
#[derive(Debug, Deserialize)]
pub struct ResourceChange {
    /// Full address, e.g. `module.eu.tandem_s3_bucket.this`.
    pub address: String,
    /// Resource type.
    #[serde(rename = "type")]
    pub ty: String,
    /// `managed` or `data`.
    #[serde(default)]
    pub mode: String,
    /// The change.
    pub change: Change,
}

/// Before/after of a change.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// e.g. `["create"]`, `["delete","create"]` (replace), `["no-op"]`.
    pub actions: Vec<String>,
    /// State before; null on create.
    #[serde(default)]
    pub before: Json,
    /// Planned state; null on delete; unknown parts are absent/null.
    #[serde(default)]
    pub after: Json,
}

impl Change {
    fn is(&self, a: &str) -> bool {
        self.actions.iter().any(|x| x == a)
    }

    /// Replace: delete and create together, in either order.
    pub fn is_replace(&self) -> bool {
        self.is("delete") && self.is("create")
    }

    /// Pure delete.
    pub fn is_delete(&self) -> bool {
        self.is("delete") && !self.is("create")
    }

    /// In-place update.
    pub fn is_update(&self) -> bool {
        self.is("update")
    }

    fn verb(&self) -> &'static str {
        if self.is_replace() {
            "replace"
        } else if self.is_delete() {
            "destroy"
        } else if self.is_update() {
            "update"
        } else if self.is("create") {
            "create"
        } else if self.is("read") {
            "read"
        } else {
            "no-op"
        }
    }
}

/// A risky change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How risky.
    pub risk: Risk,
    /// Resource address.
    pub address: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// Parses `terraform show -json` output.
pub fn parse(json: &str) -> Result<PlanJson, ReviewError> {
    Ok(serde_json::from_str(json)?)
}

/// Types whose destruction loses data or traffic.
const STATEFUL: &[(&str, &str)] = &[
    (
        "tandem_s3_bucket",
        "the bucket and every object version in it",
    ),
    (
        "tandem_route53_zone",
        "the hosted zone and every record in it",
    ),
    (
        "tandem_proxy_fleet",
        "the published fleet config the proxies poll",
    ),
];

/// Finds the risky changes, highest risk first.
pub fn review(plan: &PlanJson) -> Vec<Finding> {
    let mut out = Vec::new();
    for rc in plan.resource_changes.iter().filter(|r| r.mode != "data") {
        let c = &rc.change;
        let mut add = |risk, reason: String| {
            out.push(Finding {
                risk,
                address: rc.address.clone(),
                reason,
            })
        };
        if c.is_delete() || c.is_replace() {
            if let Some((_, what)) = STATEFUL.iter().find(|(t, _)| *t == rc.ty) {
                let keep = rc.ty == "tandem_proxy_fleet"
                    && c.before.get("retain_on_destroy") == Some(&Json::Bool(true));
                let force = c.before.get("force_destroy") == Some(&Json::Bool(true));
                if !keep {
                    let verb = if c.is_replace() {
                        "replaced"
                    } else {
                        "destroyed"
                    };
                    let extra = if force {
                        " (force_destroy is set, so contents are deleted too)"
                    } else {
                        ""
                    };
                    add(Risk::High, format!("{verb}: this removes {what}{extra}."));
                }
            }
        }
        match rc.ty.as_str() {
            "tandem_route53_failover_record" => failover(c, &mut add),
            "tandem_route53_health_check" => {
                if c.is_delete() {
                    add(
                        Risk::High,
                        "health check removed: a failover record using it stops failing over."
                            .into(),
                    );
                } else if c.is_replace() {
                    add(Risk::High, "health check replaced: it gets a new ID and starts unhealthy-unknown; records pointing at it flip until it has data.".into());
                } else if c.is_update()
                    && c.after.get("disabled") == Some(&Json::Bool(true))
                    && c.before.get("disabled") != Some(&Json::Bool(true))
                {
                    add(Risk::Medium, "health check disabled: Route 53 then treats it as healthy, so failover stops.".into());
                }
            }
            "tandem_s3_bucket_replication" => replication(c, &mut add),
            "tandem_s3_bucket_versioning" => {
                let status = |v: &Json| v.get("status").and_then(Json::as_str).map(str::to_string);
                if c.is_delete() {
                    add(Risk::High, "versioning resource destroyed: versioning is suspended, and replication from or to this bucket stops.".into());
                } else if status(&c.before).as_deref() == Some("Enabled")
                    && status(&c.after).as_deref() == Some("Suspended")
                {
                    add(Risk::High, "versioning suspended: replication from or to this bucket stops and overwritten objects lose their history.".into());
                }
            }
            "tandem_proxy_fleet" => fleet(c, &mut add),
            _ => {}
        }
    }
    out.sort_by(|a, b| b.risk.cmp(&a.risk).then(a.address.cmp(&b.address)));
    out
}

fn failover(c: &Change, add: &mut impl FnMut(Risk, String)) {
    if c.is_delete() {
        add(
            Risk::High,
            "failover record set removed: the name stops resolving.".into(),
        );
        return;
    }
    if c.is_replace() {
        add(
            Risk::High,
            "failover record set replaced: both records are deleted and recreated.".into(),
        );
        return;
    }
    if !c.is_update() {
        return;
    }
    for side in ["primary", "secondary"] {
        let (b, a) = (first(c.before.get(side)), first(c.after.get(side)));
        for field in ["records", "alias"] {
            if b.and_then(|b| b.get(field)) != a.and_then(|a| a.get(field)) {
                add(
                    Risk::Medium,
                    format!("{side} failover target changes ({field})."),
                );
            }
        }
        if b.and_then(|b| b.get("health_check_id")) != a.and_then(|a| a.get("health_check_id")) {
            let now_none = a
                .and_then(|a| a.get("health_check_id"))
                .is_none_or(Json::is_null);
            let risk = if now_none && side == "primary" {
                Risk::High
            } else {
                Risk::Medium
            };
            let what = if now_none {
                "removed: it can no longer fail over"
            } else {
                "changed"
            };
            add(risk, format!("{side} health check {what}."));
        }
    }
}

fn first(v: Option<&Json>) -> Option<&Json> {
    match v {
        Some(Json::Array(items)) => items.first(),
        Some(o @ Json::Object(_)) => Some(o),
        _ => None,
    }
}

fn list(v: &Json, key: &str) -> Vec<Json> {
    v.get(key)
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default()
}

fn replication(c: &Change, add: &mut impl FnMut(Risk, String)) {
    if c.is_delete() {
        add(
            Risk::High,
            "replication removed: new writes stop reaching the other regions.".into(),
        );
        return;
    }
    if !c.is_update() && !c.is_replace() {
        return;
    }
    let key = |r: &Json| r.get("id").and_then(Json::as_str).unwrap_or("").to_string();
    let before = list(&c.before, "rule");
    let after = list(&c.after, "rule");
    for b in &before {
        let id = key(b);
        match after.iter().find(|a| key(a) == id) {
            None => add(Risk::High, format!("replication rule {id:?} removed.")),
            Some(a) => {
                let enabled = |r: &Json| r.get("status").and_then(Json::as_str) == Some("Enabled");
                if enabled(b) && !enabled(a) {
                    add(Risk::High, format!("replication rule {id:?} disabled."));
                }
                let prefix = |r: &Json| {
                    first(r.get("filter"))
                        .and_then(|f| f.get("prefix"))
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                let (pb, pa) = (prefix(b), prefix(a));
                if pa != pb && pa.starts_with(&pb) {
                    add(
                        Risk::Medium,
                        format!("replication rule {id:?} narrowed: prefix {pb:?} → {pa:?}."),
                    );
                } else if pa != pb {
                    add(
                        Risk::Medium,
                        format!("replication rule {id:?} filter changes: prefix {pb:?} → {pa:?}."),
                    );
                }
                let dest = |r: &Json| {
                    first(r.get("destination"))
                        .and_then(|d| d.get("bucket"))
                        .cloned()
                };
                if dest(b) != dest(a) {
                    add(
                        Risk::Medium,
                        format!("replication rule {id:?} destination changes."),
                    );
                }
            }
        }
    }
}

fn fleet(c: &Change, add: &mut impl FnMut(Risk, String)) {
    if !c.is_update() && !c.is_replace() {
        return;
    }
    // Collects "bucket" and "bucket/replica" names from either plural or
    // singular block names, so the rule survives schema renames.
    fn names(v: &Json) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut buckets = BTreeSet::new();
        let mut replicas = BTreeSet::new();
        let routes = ["bucket", "buckets"]
            .iter()
            .flat_map(|k| list(v, k))
            .collect::<Vec<_>>();
        for b in routes {
            let bn = b
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            for r in ["replica", "replicas"].iter().flat_map(|k| list(&b, k)) {
                let rn = r.get("name").and_then(Json::as_str).unwrap_or("");
                replicas.insert(format!("{bn}/{rn}"));
            }
            buckets.insert(bn);
        }
        (buckets, replicas)
    }
    let (bb, br) = names(&c.before);
    let (ab, ar) = names(&c.after);
    if c.after.is_null() || (ab.is_empty() && !bb.is_empty() && c.after.get("bucket").is_none()) {
        // After contains unknowns we cannot read; say nothing rather than guess.
        return;
    }
    for b in bb.difference(&ab) {
        add(Risk::High, format!("fleet config drops bucket route {b:?}: requests for it will get 404 from every proxy."));
    }
    for r in br.difference(&ar) {
        if ab.contains(r.split('/').next().unwrap_or("")) {
            add(
                Risk::Medium,
                format!("fleet config drops replica {r:?}: one fewer place to fail over to."),
            );
        }
    }
}

/// Renders the Markdown comment.
pub fn markdown(plan: &PlanJson, findings: &[Finding]) -> String {
    let mut s = String::from("## Tandem plan review\n\n");
    let mut counts = std::collections::BTreeMap::new();
    for rc in &plan.resource_changes {
        *counts.entry(rc.change.verb()).or_insert(0) += 1;
    }
    let summary: Vec<String> = ["create", "update", "replace", "destroy"]
        .iter()
        .map(|v| format!("{} to {v}", counts.get(v).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(s, "Plan: {}.\n", summary.join(", "));
    if findings.is_empty() {
        s.push_str("No risky changes found.\n");
    } else {
        let top = findings.iter().map(|f| f.risk).max().unwrap_or(Risk::Low);
        let _ = writeln!(
            s,
            "**{} finding(s); highest risk: {top}.**\n",
            findings.len()
        );
        s.push_str("| Risk | Resource | Why |\n|---|---|---|\n");
        for f in findings {
            let icon = match f.risk {
                Risk::High => "🔴 high",
                Risk::Medium => "🟠 medium",
                Risk::Low => "🟡 low",
            };
            let _ = writeln!(
                s,
                "| {icon} | `{}` | {} |",
                f.address,
                f.reason.replace('|', "\\|")
            );
        }
    }
    let changed: Vec<&ResourceChange> = plan
        .resource_changes
        .iter()
        .filter(|r| !matches!(r.change.verb(), "no-op" | "read"))
        .collect();
    if !changed.is_empty() {
        s.push_str("\n<details><summary>All changes</summary>\n\n");
        for rc in changed {
            let _ = writeln!(s, "- {} `{}`", rc.change.verb(), rc.address);
        }
        s.push_str("\n</details>\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(changes: Json) -> PlanJson {
        serde_json::from_value(json!({ "resource_changes": changes })).unwrap()
    }

    fn rc(address: &str, ty: &str, actions: &[&str], before: Json, after: Json) -> Json {
        json!({"address": address, "type": ty, "mode": "managed", "change": {"actions": actions, "before": before, "after": after}})
    }

    #[test]
    fn bucket_destroy_is_high_and_mentions_force_destroy() {
        let p = plan(json!([rc(
            "tandem_s3_bucket.a",
            "tandem_s3_bucket",
            &["delete"],
            json!({"force_destroy": true}),
            Json::Null
        )]));
        let f = review(&p);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].risk, Risk::High);
        assert!(f[0].reason.contains("force_destroy"));
    }

    #[test]
    fn versioning_suspended_is_high() {
        let p = plan(json!([rc(
            "v",
            "tandem_s3_bucket_versioning",
            &["update"],
            json!({"status": "Enabled"}),
            json!({"status": "Suspended"})
        )]));
        assert_eq!(review(&p)[0].risk, Risk::High);
    }

    #[test]
    fn replication_rule_removed_disabled_and_narrowed() {
        let before = json!({"rule": [
            {"id": "a", "status": "Enabled", "filter": [{"prefix": ""}], "destination": [{"bucket": "arn:aws:s3:::x"}]},
            {"id": "b", "status": "Enabled", "filter": [{"prefix": "img/"}], "destination": [{"bucket": "arn:aws:s3:::x"}]},
            {"id": "c", "status": "Enabled", "filter": [{"prefix": ""}], "destination": [{"bucket": "arn:aws:s3:::x"}]}
        ]});
        let after = json!({"rule": [
            {"id": "a", "status": "Disabled", "filter": [{"prefix": ""}], "destination": [{"bucket": "arn:aws:s3:::x"}]},
            {"id": "b", "status": "Enabled", "filter": [{"prefix": "img/thumbs/"}], "destination": [{"bucket": "arn:aws:s3:::x"}]}
        ]});
        let f = review(&plan(json!([rc(
            "r",
            "tandem_s3_bucket_replication",
            &["update"],
            before,
            after
        )])));
        let reasons: Vec<&str> = f.iter().map(|f| f.reason.as_str()).collect();
        assert!(
            reasons.iter().any(|r| r.contains("\"a\" disabled")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("\"b\" narrowed")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("\"c\" removed")),
            "{reasons:?}"
        );
    }

    #[test]
    fn failover_primary_losing_health_check_is_high() {
        let before = json!({"primary": [{"records": ["1.1.1.1"], "health_check_id": "hc1"}], "secondary": [{"records": ["2.2.2.2"]}]});
        let after = json!({"primary": [{"records": ["1.1.1.1"], "health_check_id": null}], "secondary": [{"records": ["2.2.2.2"]}]});
        let f = review(&plan(json!([rc(
            "f",
            "tandem_route53_failover_record",
            &["update"],
            before,
            after
        )])));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].risk, Risk::High);
    }

    #[test]
    fn fleet_dropping_route_and_replica() {
        let before = json!({"bucket": [
            {"name": "assets", "replica": [{"name": "eu"}, {"name": "us"}]},
            {"name": "logs", "replica": [{"name": "eu"}]}
        ]});
        let after = json!({"bucket": [{"name": "assets", "replica": [{"name": "eu"}]}]});
        let f = review(&plan(json!([rc(
            "p",
            "tandem_proxy_fleet",
            &["update"],
            before,
            after
        )])));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].risk, Risk::High);
        assert!(f[0].reason.contains("\"logs\""));
        assert!(f[1].reason.contains("assets/us"));
    }

    #[test]
    fn creates_and_data_reads_are_quiet_and_markdown_summarises() {
        let p = plan(json!([
            rc("tandem_s3_bucket.new", "tandem_s3_bucket", &["create"], Json::Null, json!({})),
            {"address": "data.tandem_s3_bucket.x", "type": "tandem_s3_bucket", "mode": "data", "change": {"actions": ["read"]}}
        ]));
        let f = review(&p);
        assert!(f.is_empty());
        let md = markdown(&p, &f);
        assert!(md.contains("Plan: 1 to create, 0 to update, 0 to replace, 0 to destroy."));
        assert!(md.contains("No risky changes found."));
    }

    #[test]
    fn risk_levels_parse_and_order() {
        assert!("HIGH".parse::<Risk>().unwrap() > Risk::Medium);
        assert!("critical".parse::<Risk>().is_err());
        assert!(parse("{not json").is_err());
    }
}
