//! SARIF 2.1.0 for code-scanning UIs: one rule per finding kind, one
//! result per finding, located at the `resource` block that declares the
//! resource when the Terraform sources are at hand.

use std::path::{Component, Path as FsPath, PathBuf};

use serde_json::{json, Value as Json};

use crate::rules::{Finding, Risk, Rule};
use crate::Report;

/// Finds where resources are declared, from the plan's configuration (for
/// module sources) and the `.tf` files under a root directory.
#[derive(Debug, Clone)]
pub struct Locator {
    /// The Terraform root module's directory, as the SARIF consumer should
    /// see it (relative to the repository root, e.g. `infra`).
    pub root: PathBuf,
    /// The plan's `configuration`.
    pub configuration: Json,
}

impl Locator {
    /// The file and 1-based line declaring the finding's resource; else the
    /// root module's `main.tf` (or first `.tf` file) at line 1; else the
    /// root directory itself.
    pub fn locate(&self, f: &Finding) -> (String, usize) {
        let dir = self.module_dir(f.module.as_deref());
        let local = f.local_address();
        // `type.name[index]`: the block is declared once for all instances.
        let local = local.split('[').next().unwrap_or(local);
        if let (Some(dir), Some((ty, name))) = (dir, local.split_once('.')) {
            for file in tf_files(&dir) {
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                for (n, line) in text.lines().enumerate() {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    if words.len() >= 3
                        && words[0] == "resource"
                        && words[1] == format!("\"{ty}\"")
                        && words[2] == format!("\"{name}\"")
                    {
                        return (uri(&file), n + 1);
                    }
                }
            }
        }
        let files = tf_files(&self.root);
        let main = files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == "main.tf"))
            .or(files.first());
        match main {
            Some(f) => (uri(f), 1),
            None => (uri(&self.root), 1),
        }
    }

    /// The directory of a module instance such as `module.a["x"].module.b`,
    /// when every source on the way is a local path.
    fn module_dir(&self, module: Option<&str>) -> Option<PathBuf> {
        let mut dir = self.root.clone();
        let mut config = self.configuration.get("root_module")?;
        let Some(module) = module else {
            return Some(dir);
        };
        for part in module.split("module.").filter(|p| !p.is_empty()) {
            let name = part.trim_end_matches('.').split('[').next()?;
            let call = config.get("module_calls")?.get(name)?;
            let source = call.get("source")?.as_str()?;
            if !(source.starts_with("./") || source.starts_with("../")) {
                return None;
            }
            dir = normalise(&dir.join(source));
            config = call.get("module")?;
        }
        Some(dir)
    }
}

fn tf_files(dir: &FsPath) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "tf"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// `a/./b/../c` → `a/c`, without touching the file system (the root may be
/// relative to where the SARIF is read, not to here).
fn normalise(p: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn uri(p: &FsPath) -> String {
    normalise(p).to_string_lossy().replace('\\', "/")
}

fn level(r: Risk) -> &'static str {
    match r {
        Risk::High => "error",
        Risk::Medium => "warning",
        Risk::Low => "note",
    }
}

/// `failover-ttl-raised` → `FailoverTtlRaised`, SARIF's rule name style.
fn pascal(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Renders the report as a SARIF 2.1.0 log.
pub fn render(report: &Report, locator: &Locator) -> String {
    let rules: Vec<Json> = Rule::ALL
        .iter()
        .map(|r| {
            json!({
                "id": r.id(),
                "name": pascal(r.id()),
                "shortDescription": {"text": r.title()},
                "fullDescription": {"text": format!("{}: {}", r.title(), r.help())},
                "help": {"text": r.help()},
                "defaultConfiguration": {"level": level(r.risk())},
                "properties": {"tags": ["terraform", "availability", "tandem"]}
            })
        })
        .collect();
    let results: Vec<Json> = report
        .findings
        .iter()
        .map(|f| {
            let (file, line) = locator.locate(f);
            let index = Rule::ALL.iter().position(|r| *r == f.rule).unwrap_or(0);
            let diff: Vec<String> = f.changes.iter().map(ToString::to_string).collect();
            let mut text = format!("{}: {}", f.address, f.message);
            if !diff.is_empty() {
                text.push_str(&format!("\n{}", diff.join("\n")));
            }
            json!({
                "ruleId": f.rule.id(),
                "ruleIndex": index,
                "level": level(f.risk),
                "message": {"text": text},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": file},
                        "region": {"startLine": line}
                    },
                    "logicalLocations": [{"fullyQualifiedName": f.address, "kind": "resource"}]
                }],
                "partialFingerprints": {"tandemReview/v1": format!("{}:{}", f.rule.id(), f.address)},
                "properties": {"risk": f.risk, "action": f.action.verb()}
            })
        })
        .collect();
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "tandem-review",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules
            }},
            "results": results
        }]
    });
    // A `Value` always serialises.
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;

    fn report() -> Report {
        Report::of(
            &Plan::parse(
                &json!({
                    "format_version": "1.2",
                    "resource_changes": [
                        {"address": "module.eu.tandem_s3_bucket.this[0]", "module_address": "module.eu",
                         "type": "tandem_s3_bucket", "name": "this", "mode": "managed",
                         "change": {"actions": ["delete"], "before": {"bucket": "b"}, "after": null}},
                        {"address": "tandem_route53_health_check.h", "type": "tandem_route53_health_check",
                         "name": "h", "mode": "managed",
                         "change": {"actions": ["update"], "before": {"disabled": false}, "after": {"disabled": true}}}
                    ]
                })
                .to_string(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn results_point_at_the_declaring_block_through_local_module_sources() {
        let root = tempfile::tempdir().unwrap();
        let infra = root.path().join("infra");
        std::fs::create_dir_all(infra.join("../modules/bucket")).unwrap();
        std::fs::create_dir_all(&infra).unwrap();
        std::fs::write(
            infra.join("main.tf"),
            "# dns\n\nresource \"tandem_route53_health_check\" \"h\" {\n}\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("modules/bucket/main.tf"),
            "resource \"tandem_s3_bucket\" \"this\" {\n  count = 1\n}\n",
        )
        .unwrap();
        let locator = Locator {
            root: infra.clone(),
            configuration: json!({"root_module": {"module_calls": {"eu": {"source": "../modules/bucket", "module": {}}}}}),
        };
        let sarif: Json = serde_json::from_str(&render(&report(), &locator)).unwrap();
        assert_eq!(sarif["version"], "2.1.0");
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let loc = |i: usize| {
            let l = &results[i]["locations"][0]["physicalLocation"];
            (
                l["artifactLocation"]["uri"].as_str().unwrap().to_string(),
                l["region"]["startLine"].as_u64().unwrap(),
            )
        };
        let modules = root.path().join("modules/bucket/main.tf");
        assert_eq!(loc(0), (modules.display().to_string(), 1));
        assert_eq!(results[0]["level"], "error");
        assert_eq!(results[1]["level"], "warning");
        assert_eq!(loc(1), (infra.join("main.tf").display().to_string(), 3));
        let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .unwrap();
        assert_eq!(rules.len(), Rule::ALL.len());
        let idx = results[1]["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], "health-check-disabled");
        assert_eq!(rules[idx]["name"], "HealthCheckDisabled");
    }

    #[test]
    fn without_sources_results_fall_back_to_the_root() {
        let locator = Locator {
            root: PathBuf::from("./infra/../infra"),
            configuration: Json::Null,
        };
        let sarif: Json = serde_json::from_str(&render(&report(), &locator)).unwrap();
        let uri = &sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
            ["artifactLocation"]["uri"];
        assert_eq!(uri, "infra");
    }
}
