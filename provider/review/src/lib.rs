//! Plan review for CI. Reads the JSON that `terraform show -json PLANFILE`
//! prints and finds the changes that are risky in a multi-region HA setup
//! (failover records and health checks, replication, versioning, the proxy
//! fleet, destroys of anything stateful), each with the attribute diff it
//! is based on; counts the plan as Terraform does; reports drift; and
//! renders it all as a pull-request comment, JSON or SARIF.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod markdown;
pub mod plan;
pub mod rules;
pub mod sarif;
pub mod value;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use plan::{Action, Counts, Mode, Plan, PlanError, ResourceChange};
pub use rules::{review, Finding, Risk, RiskError, Rule};
pub use value::{AttrChange, Path, Shown};

/// From which risk on a review fails the CI job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Never fail (e.g. for a report-only run).
    Never,
    /// Fail on a finding at this risk or above.
    At(Risk),
}

impl Threshold {
    /// Whether a finding at `risk` reaches the threshold.
    pub fn reached_by(self, risk: Risk) -> bool {
        matches!(self, Threshold::At(t) if risk >= t)
    }
}

impl FromStr for Threshold {
    type Err = RiskError;
    fn from_str(s: &str) -> Result<Threshold, RiskError> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "never" => Ok(Threshold::Never),
            _ => s
                .parse()
                .map(Threshold::At)
                .map_err(|_| RiskError(s.to_string())),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Never => f.write_str("none"),
            Threshold::At(r) => r.fmt(f),
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A resource changed outside Terraform, as the refresh before the plan
/// found it.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// Resource address.
    pub address: String,
    /// Its module, `None` for the root module.
    pub module: Option<String>,
    /// `update` (changed) or `destroy` (deleted outside Terraform).
    #[serde(serialize_with = "verb")]
    pub action: Action,
    /// What changed, state before → what the refresh read.
    pub changes: Vec<AttrChange>,
}

/// One planned change, as listed under "All changes".
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// Resource address.
    pub address: String,
    /// Its module, `None` for the root module.
    pub module: Option<String>,
    /// What happens.
    #[serde(serialize_with = "verb")]
    pub action: Action,
    /// Imported by this plan.
    pub importing: bool,
    /// The address before a `moved` block, when it moved.
    pub moved_from: Option<String>,
    /// Why Terraform chose the action, in words.
    pub reason: Option<String>,
    /// The attributes that change (updates and replaces only).
    pub changed: Vec<Path>,
}

fn verb<S: serde::Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.verb())
}

/// Everything the renderers need: counts, findings, drift and changes.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The Terraform that made the plan.
    pub terraform_version: Option<String>,
    /// Counts as Terraform's "Plan:" line gives them.
    pub counts: Counts,
    /// Terraform's summary sentence for those counts.
    pub summary: String,
    /// Risky changes, highest risk first.
    pub findings: Vec<Finding>,
    /// Changes made outside Terraform.
    pub drift: Vec<Drift>,
    /// Every change Terraform's plan shows, in plan order.
    pub changes: Vec<Planned>,
}

impl Report {
    /// Reviews a plan.
    pub fn of(plan: &Plan) -> Report {
        let counts = Counts::of(plan);
        let drift = plan
            .resource_drift
            .iter()
            .filter(|r| r.mode == Mode::Managed && r.action() != Action::NoOp)
            .map(|r| Drift {
                address: r.address.clone(),
                module: r.module().map(str::to_string),
                action: r.action(),
                changes: r.change.diff(),
            })
            .collect();
        let changes = plan
            .resource_changes
            .iter()
            .filter(|r| {
                let a = r.action();
                (a != Action::NoOp || r.moved() || r.change.importing.is_some())
                    && !(a == Action::Delete && r.mode != Mode::Managed)
            })
            .map(|r| {
                let a = r.action();
                Planned {
                    address: r.address.clone(),
                    module: r.module().map(str::to_string),
                    action: a,
                    importing: r.change.importing.is_some(),
                    moved_from: r.moved().then(|| r.previous_address.clone()).flatten(),
                    reason: r.reason(),
                    changed: if a == Action::Update || a.is_replace() {
                        r.change.diff().into_iter().map(|c| c.path).collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect();
        Report {
            terraform_version: plan.terraform_version.clone(),
            summary: counts.line(),
            counts,
            findings: review(plan),
            drift,
            changes,
        }
    }

    /// The highest risk found, if any.
    pub fn highest(&self) -> Option<Risk> {
        self.findings.iter().map(|f| f.risk).max()
    }

    /// Whether the review fails a job with this threshold.
    pub fn fails(&self, threshold: Threshold) -> bool {
        self.findings.iter().any(|f| threshold.reached_by(f.risk))
    }

    /// The report as pretty JSON, with the threshold and its verdict.
    pub fn to_json(&self, threshold: Threshold) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            tool: &'static str,
            version: &'static str,
            fail_on: Threshold,
            fails: bool,
            highest_risk: Option<Risk>,
            #[serde(flatten)]
            report: &'a Report,
        }
        let out = Out {
            tool: "tandem-review",
            version: env!("CARGO_PKG_VERSION"),
            fail_on: threshold,
            fails: self.fails(threshold),
            highest_risk: self.highest(),
            report: self,
        };
        // Plain data with string keys: serialising it cannot fail.
        serde_json::to_string_pretty(&out).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds_parse_and_compare() {
        assert_eq!("none".parse::<Threshold>().unwrap(), Threshold::Never);
        assert_eq!(
            "Medium".parse::<Threshold>().unwrap(),
            Threshold::At(Risk::Medium)
        );
        assert!("critical".parse::<Threshold>().is_err());
        assert!(Threshold::At(Risk::Medium).reached_by(Risk::High));
        assert!(!Threshold::At(Risk::High).reached_by(Risk::Medium));
        assert!(!Threshold::Never.reached_by(Risk::High));
    }

    #[test]
    fn json_has_findings_drift_changes_and_the_verdict() {
        let plan = Plan::parse(
            &json!({
                "format_version": "1.2",
                "resource_changes": [{
                    "address": "module.dns.tandem_route53_zone.z", "module_address": "module.dns",
                    "type": "tandem_route53_zone", "name": "z", "mode": "managed",
                    "action_reason": "delete_because_no_resource_config",
                    "change": {"actions": ["delete"], "before": {"name": "example.com"}, "after": null}
                }],
                "resource_drift": [{
                    "address": "tandem_route53_health_check.h", "type": "tandem_route53_health_check", "name": "h",
                    "mode": "managed",
                    "change": {"actions": ["update"], "before": {"disabled": false}, "after": {"disabled": true}}
                }]
            })
            .to_string(),
        )
        .unwrap();
        let r = Report::of(&plan);
        let v: serde_json::Value =
            serde_json::from_str(&r.to_json(Threshold::At(Risk::High))).unwrap();
        assert_eq!(v["fails"], true);
        assert_eq!(v["highest_risk"], "high");
        assert_eq!(v["summary"], "Plan: 0 to add, 0 to change, 1 to destroy.");
        assert_eq!(v["findings"][0]["rule"], "stateful-destroyed");
        assert_eq!(v["findings"][0]["module"], "module.dns");
        assert_eq!(
            v["findings"][0]["reason"],
            "`tandem_route53_zone.z` is not in the configuration"
        );
        assert_eq!(v["findings"][0]["changes"][0]["path"], "name");
        assert_eq!(v["drift"][0]["changes"][0]["after"]["value"], true);
        assert_eq!(v["changes"][0]["action"], "destroy");
    }
}
