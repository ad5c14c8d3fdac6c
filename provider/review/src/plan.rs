//! The parts of Terraform's JSON plan (`terraform show -json PLANFILE`,
//! format 1.x) the review reads, and the action of each change as Terraform
//! itself classifies it.

use std::fmt;

use serde::Deserialize;
use serde_json::Value as Json;

/// Errors reading a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not JSON, or not shaped like a Terraform plan.
    #[error("reading the plan: not the JSON `terraform show -json PLANFILE` prints: {0}")]
    Json(#[from] serde_json::Error),
    /// A plan from a future format major version.
    #[error("reading the plan: format_version {0:?} is not 1.x, the only JSON plan format this review understands")]
    Format(String),
    /// An action list Terraform's own renderer would not accept either.
    #[error("reading the plan: {address} has the actions {actions:?}, which no Terraform plan format 1.x uses")]
    Actions {
        /// The resource instance.
        address: String,
        /// What the plan said.
        actions: Vec<String>,
    },
}

/// A plan as `terraform show -json` renders it.
#[derive(Debug, Deserialize)]
pub struct Plan {
    /// `1.2` and so on; only major version 1 is read.
    #[serde(default)]
    pub format_version: String,
    /// The Terraform that made the plan.
    #[serde(default)]
    pub terraform_version: Option<String>,
    /// Planned changes, one per resource instance (and deposed object).
    #[serde(default)]
    pub resource_changes: Vec<ResourceChange>,
    /// Changes made outside Terraform, found by the refresh before planning.
    #[serde(default)]
    pub resource_drift: Vec<ResourceChange>,
    /// Planned changes of root module outputs.
    #[serde(default)]
    pub output_changes: serde_json::Map<String, Json>,
    /// Actions invoked by the plan (Terraform 1.14+); Terraform counts them
    /// in its summary line.
    #[serde(default)]
    pub action_invocations: Vec<Json>,
    /// The configuration, used to find where a resource is declared.
    #[serde(default)]
    pub configuration: Json,
}

impl Plan {
    /// Parses `terraform show -json` output and checks every action list.
    pub fn parse(json: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(json)?;
        if !plan.format_version.is_empty() && !plan.format_version.starts_with("1.") {
            return Err(PlanError::Format(plan.format_version));
        }
        for rc in plan.resource_changes.iter().chain(&plan.resource_drift) {
            rc.change.action(&rc.address)?;
        }
        Ok(plan)
    }
}

/// Whether a change is to a managed resource or a data source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `resource` blocks.
    #[default]
    Managed,
    /// `data` blocks.
    Data,
}

/// One resource instance's planned (or detected) change.
#[derive(Debug, Deserialize)]
pub struct ResourceChange {
    /// Full address, e.g. `module.eu.tandem_s3_bucket.this`.
    pub address: String,
    /// The module it is in, e.g. `module.eu`; absent for the root module.
    #[serde(default)]
    pub module_address: Option<String>,
    /// Managed resource or data source.
    #[serde(default)]
    pub mode: Mode,
    /// Resource type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Resource name within its module.
    #[serde(default)]
    pub name: String,
    /// `count` index or `for_each` key.
    #[serde(default)]
    pub index: Option<Json>,
    /// Set when the change is to a deposed object left by a failed replace.
    #[serde(default)]
    pub deposed: Option<String>,
    /// The address before a `moved` block.
    #[serde(default)]
    pub previous_address: Option<String>,
    /// Why Terraform chose this action (`replace_because_tainted`, ...).
    #[serde(default)]
    pub action_reason: Option<String>,
    /// The change itself.
    pub change: Change,
}

impl ResourceChange {
    /// The action, already checked by [`Plan::parse`].
    pub fn action(&self) -> Action {
        self.change.action(&self.address).unwrap_or(Action::NoOp)
    }

    /// The module, or `None` for the root module.
    pub fn module(&self) -> Option<&str> {
        self.module_address.as_deref().filter(|m| !m.is_empty())
    }

    /// True when a `moved` block gave it a new address.
    pub fn moved(&self) -> bool {
        self.previous_address
            .as_deref()
            .is_some_and(|p| !p.is_empty() && p != self.address)
    }

    /// Why Terraform chose the action, in words, if the plan says.
    pub fn reason(&self) -> Option<String> {
        let ty_name = format!("{}.{}", self.ty, self.name);
        let index = self.index.as_ref().map(Json::to_string).unwrap_or_default();
        let text = match self.action_reason.as_deref()? {
            "replace_because_tainted" => "it is tainted".to_string(),
            "replace_by_request" => "replacement was requested (`-replace`)".to_string(),
            "replace_by_triggers" => "`replace_triggered_by` changed".to_string(),
            "replace_because_cannot_update" => {
                "an argument that forces replacement changes".to_string()
            }
            "delete_because_no_resource_config" => {
                format!("`{ty_name}` is not in the configuration")
            }
            "delete_because_no_module" => format!(
                "`{}` is not in the configuration",
                self.module().unwrap_or("its module")
            ),
            "delete_because_wrong_repetition" => match &self.index {
                None => "the resource now uses `count` or `for_each`".to_string(),
                Some(Json::Number(_)) => "the resource no longer uses `count`".to_string(),
                Some(_) => "the resource no longer uses `for_each`".to_string(),
            },
            "delete_because_count_index" => format!("index [{index}] is out of range for `count`"),
            "delete_because_each_key" => format!("key [{index}] is not in the `for_each` map"),
            "delete_because_no_move_target" => format!(
                "it was moved from `{}` to an address that is not in the configuration",
                self.previous_address.as_deref().unwrap_or("?")
            ),
            "read_because_config_unknown" => {
                "its configuration refers to values not yet known".to_string()
            }
            "read_because_dependency_pending" => {
                "it depends on changes not yet applied".to_string()
            }
            "read_because_check_nested" => "a check block reads it again".to_string(),
            other => other.replace('_', " "),
        };
        Some(text)
    }
}

/// Before, after and what is unknown or sensitive in them.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// e.g. `["create"]`, `["delete","create"]` (replace), `["no-op"]`.
    pub actions: Vec<String>,
    /// The object before; null on create.
    #[serde(default)]
    pub before: Json,
    /// The planned object; null on delete. Unknown parts are absent here
    /// and marked in `after_unknown`.
    #[serde(default)]
    pub after: Json,
    /// `true` where a value is known only after apply: the whole value, or
    /// the leaves of a structure mirroring `after`.
    #[serde(default)]
    pub after_unknown: Json,
    /// `true` where a value of `before` is sensitive, mirroring it.
    #[serde(default)]
    pub before_sensitive: Json,
    /// `true` where a value of `after` is sensitive, mirroring it.
    #[serde(default)]
    pub after_sensitive: Json,
    /// Paths whose change forces the replacement, each a list of keys and
    /// indexes.
    #[serde(default)]
    pub replace_paths: Vec<Vec<Json>>,
    /// Present when the change imports an existing object.
    #[serde(default)]
    pub importing: Option<Json>,
}

impl Change {
    /// The action, as Terraform's `UnmarshalActions` reads the list.
    pub fn action(&self, address: &str) -> Result<Action, PlanError> {
        let a: Vec<&str> = self.actions.iter().map(String::as_str).collect();
        Ok(match a.as_slice() {
            ["no-op"] => Action::NoOp,
            ["create"] => Action::Create,
            ["read"] => Action::Read,
            ["update"] => Action::Update,
            ["delete"] => Action::Delete,
            ["forget"] => Action::Forget,
            ["delete", "create"] => Action::DeleteThenCreate,
            ["create", "delete"] => Action::CreateThenDelete,
            ["create", "forget"] => Action::CreateThenForget,
            _ => {
                return Err(PlanError::Actions {
                    address: address.to_string(),
                    actions: self.actions.clone(),
                })
            }
        })
    }
}

/// A planned action, as Terraform names them internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Nothing changes (or only the address or import status).
    NoOp,
    /// A new object.
    Create,
    /// A data source read during apply.
    Read,
    /// Changed in place.
    Update,
    /// Destroyed.
    Delete,
    /// Replaced: destroyed, then created.
    DeleteThenCreate,
    /// Replaced: created, then the old one destroyed.
    CreateThenDelete,
    /// Removed from state, left in place (`removed { lifecycle { destroy = false } }`).
    Forget,
    /// Replaced, with the old object left in place.
    CreateThenForget,
}

impl Action {
    /// Either kind of replace.
    pub fn is_replace(self) -> bool {
        matches!(
            self,
            Action::DeleteThenCreate | Action::CreateThenDelete | Action::CreateThenForget
        )
    }

    /// Whether the current object goes away: a destroy or a replace that
    /// destroys.
    pub fn destroys(self) -> bool {
        matches!(
            self,
            Action::Delete | Action::DeleteThenCreate | Action::CreateThenDelete
        )
    }

    /// A short verb for lists: `create`, `update`, `replace`, `destroy`, ...
    pub fn verb(self) -> &'static str {
        match self {
            Action::NoOp => "no-op",
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "destroy",
            Action::DeleteThenCreate => "replace",
            Action::CreateThenDelete => "replace (create first)",
            Action::Forget => "forget",
            Action::CreateThenForget => "replace (old kept)",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())
    }
}

/// Counts of a plan, exactly as Terraform's "Plan:" line counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Imports (`N to import`, shown only when non-zero).
    pub import: usize,
    /// Creates, each replace counting one.
    pub add: usize,
    /// In-place updates.
    pub change: usize,
    /// Destroys, each replace that destroys counting one.
    pub destroy: usize,
    /// Actions to invoke (shown only when non-zero).
    pub actions: usize,
    /// Whether any resource change is shown at all (moves and imports
    /// included); without one, and without output changes or actions,
    /// Terraform prints "No changes." instead of a Plan line.
    pub any_resource_change: bool,
    /// Whether any output value changes.
    pub outputs_change: bool,
}

impl Counts {
    /// Counts `plan` the way Terraform's human plan renderer does: no-ops
    /// only when moved or imported, no deleted data sources, a replace as
    /// one create plus one destroy, reads and forgets in neither.
    pub fn of(plan: &Plan) -> Counts {
        let mut c = Counts {
            actions: plan.action_invocations.len(),
            outputs_change: plan.output_changes.values().any(|o| {
                o.get("actions")
                    .and_then(Json::as_array)
                    .is_some_and(|a| a.iter().any(|x| x != "no-op"))
            }),
            ..Counts::default()
        };
        for rc in &plan.resource_changes {
            let action = rc.action();
            if action == Action::NoOp && !rc.moved() && rc.change.importing.is_none() {
                continue;
            }
            if action == Action::Delete && rc.mode != Mode::Managed {
                continue;
            }
            c.any_resource_change = true;
            if rc.change.importing.is_some() {
                c.import += 1;
            }
            match action {
                Action::Create | Action::CreateThenForget => c.add += 1,
                Action::Update => c.change += 1,
                Action::Delete => c.destroy += 1,
                Action::DeleteThenCreate | Action::CreateThenDelete => {
                    c.add += 1;
                    c.destroy += 1;
                }
                Action::NoOp | Action::Read | Action::Forget => {}
            }
        }
        c
    }

    /// Terraform's own sentence: `Plan: 1 to add, 0 to change, 1 to
    /// destroy.`, or `No changes.` when it would print none.
    pub fn line(&self) -> String {
        if !self.any_resource_change && !self.outputs_change && self.actions == 0 {
            return "No changes.".to_string();
        }
        if !self.any_resource_change && self.actions == 0 {
            return "No resource changes; only output values change.".to_string();
        }
        let mut s = String::from("Plan: ");
        if self.import > 0 {
            s.push_str(&format!("{} to import, ", self.import));
        }
        s.push_str(&format!(
            "{} to add, {} to change, {} to destroy.",
            self.add, self.change, self.destroy
        ));
        if self.actions > 0 {
            s.push_str(&format!(" Actions: {} to invoke.", self.actions));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(changes: Json) -> Plan {
        Plan::parse(&json!({"format_version": "1.2", "resource_changes": changes}).to_string())
            .unwrap()
    }

    fn rc(address: &str, actions: &[&str]) -> Json {
        json!({"address": address, "type": "t", "name": "n", "mode": "managed", "change": {"actions": actions}})
    }

    #[test]
    fn a_replace_counts_as_one_add_and_one_destroy() {
        let p = plan(json!([
            rc("a", &["delete", "create"]),
            rc("b", &["create", "delete"]),
            rc("c", &["create"]),
            rc("d", &["update"]),
            rc("e", &["delete"]),
            rc("f", &["no-op"]),
        ]));
        let c = Counts::of(&p);
        assert_eq!((c.add, c.change, c.destroy), (3, 1, 3));
        assert_eq!(c.line(), "Plan: 3 to add, 1 to change, 3 to destroy.");
    }

    #[test]
    fn reads_forgets_deleted_data_sources_and_plain_no_ops_are_not_counted() {
        let mut data = rc("data.t.x", &["delete"]);
        data["mode"] = json!("data");
        let p = plan(json!([
            rc("r", &["read"]),
            rc("f", &["forget"]),
            data,
            rc("n", &["no-op"])
        ]));
        let c = Counts::of(&p);
        assert_eq!((c.add, c.change, c.destroy), (0, 0, 0));
        // The read and the forget are shown, so Terraform prints a Plan line.
        assert_eq!(c.line(), "Plan: 0 to add, 0 to change, 0 to destroy.");
        assert_eq!(
            Counts::of(&plan(json!([rc("n", &["no-op"])]))).line(),
            "No changes."
        );
    }

    #[test]
    fn imports_and_moves_are_shown_and_imports_counted() {
        let mut imported = rc("i", &["no-op"]);
        imported["change"]["importing"] = json!({"id": "x"});
        let mut moved = rc("m", &["no-op"]);
        moved["previous_address"] = json!("old");
        let c = Counts::of(&plan(json!([imported, moved])));
        assert_eq!(
            c.line(),
            "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy."
        );
    }

    #[test]
    fn unknown_action_lists_and_future_formats_are_refused() {
        let bad = json!({"format_version": "1.2", "resource_changes": [rc("a", &["explode"])]});
        let e = Plan::parse(&bad.to_string()).unwrap_err();
        assert!(e.to_string().contains("\"explode\""), "{e}");
        let future = json!({"format_version": "2.0"});
        assert!(matches!(
            Plan::parse(&future.to_string()),
            Err(PlanError::Format(_))
        ));
        assert!(Plan::parse("{not json").is_err());
    }

    #[test]
    fn reasons_read_as_terraform_words_them() {
        let mut r: ResourceChange =
            serde_json::from_value(rc("module.m.t.n[2]", &["delete"])).unwrap();
        r.module_address = Some("module.m".into());
        r.index = Some(json!(2));
        r.action_reason = Some("delete_because_count_index".into());
        assert_eq!(r.reason().unwrap(), "index [2] is out of range for `count`");
        r.action_reason = Some("delete_because_no_module".into());
        assert_eq!(
            r.reason().unwrap(),
            "`module.m` is not in the configuration"
        );
    }
}
