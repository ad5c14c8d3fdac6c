//! The pull-request comment: a hidden marker CI finds the comment by, the
//! plan summary, findings grouped by module with the attribute diff behind
//! each, drift, and every change by module. Capped below GitHub's comment
//! limit, cutting whole sections from the end and saying so.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::rules::{Finding, Risk};
use crate::{Action, Report, Threshold};

/// GitHub refuses comments over 65,536 characters. The cap counts bytes,
/// which are never fewer than characters (nor UTF-16 units), so a comment
/// within it is within GitHub's limit however GitHub counts; the margin
/// leaves room for the truncation notice.
pub const MAX_COMMENT_BYTES: usize = 65_000;

/// The marker's prefix; CI finds its comment by the whole first line.
pub const MARKER_PREFIX: &str = "<!-- tandem-review";

/// How to render the comment.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tells this review's comment apart from other reviews on the same
    /// pull request (one per Terraform root, say); `None` for the only one.
    pub marker_id: Option<String>,
    /// The job's threshold, so the comment can say whether it blocks.
    pub threshold: Threshold,
    /// Largest comment in bytes.
    pub max_bytes: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            marker_id: None,
            threshold: Threshold::At(Risk::High),
            max_bytes: MAX_COMMENT_BYTES,
        }
    }
}

/// The hidden first line of the comment, e.g. `<!-- tandem-review -->` or
/// `<!-- tandem-review:infra/prod -->`.
pub fn marker(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{MARKER_PREFIX}:{} -->", id.replace("--", "-")),
        None => format!("{MARKER_PREFIX} -->"),
    }
}

fn icon(r: Risk) -> &'static str {
    match r {
        Risk::High => "🔴",
        Risk::Medium => "🟠",
        Risk::Low => "🟡",
    }
}

fn module_name(m: Option<&str>) -> String {
    match m {
        Some(m) => format!("`{m}`"),
        None => "root module".to_string(),
    }
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Appends whole blocks while they fit the budget; once one does not, it
/// and every later block are left out and counted.
struct Budget {
    out: String,
    max: usize,
    left_out: usize,
}

impl Budget {
    fn push(&mut self, block: &str) {
        if self.left_out == 0 && self.out.len() + block.len() <= self.max {
            self.out.push_str(block);
        } else {
            self.left_out += 1;
        }
    }
}

/// The truncation notice: what was left out and where the rest is.
fn notice(left_out: usize) -> String {
    format!("\n> [!WARNING]\n> This review was cut to fit GitHub's comment limit: {left_out} more section(s) left out. The job log and `tandem-review --format=json` have all of it.\n")
}

/// Renders the comment.
pub fn render(report: &Report, opts: &Options) -> String {
    let mut head = String::new();
    let _ = writeln!(head, "{}", marker(opts.marker_id.as_deref()));
    let title = opts
        .marker_id
        .as_deref()
        .map(|id| format!(" · `{id}`"))
        .unwrap_or_default();
    let _ = writeln!(head, "## Tandem plan review{title}\n");
    let _ = writeln!(head, "**{}**\n", report.summary);
    match report.highest() {
        None => head.push_str("No risky changes found.\n"),
        Some(top) => {
            let count = |r| report.findings.iter().filter(|f| f.risk == r).count();
            let parts: Vec<String> = [Risk::High, Risk::Medium, Risk::Low]
                .into_iter()
                .filter(|r| count(*r) > 0)
                .map(|r| format!("{} {r}", count(r)))
                .collect();
            let _ = writeln!(
                head,
                "{} **{} finding(s)**: {}.",
                icon(top),
                report.findings.len(),
                parts.join(", ")
            );
            if report.fails(opts.threshold) {
                let _ = writeln!(
                    head,
                    "This plan reaches `--fail-on={}`: it needs a human approval.",
                    opts.threshold
                );
            }
        }
    }
    // Room for the notice is kept from the start, so it always fits.
    let reserve = notice(usize::MAX).len();
    let mut b = Budget {
        out: head,
        max: opts.max_bytes.saturating_sub(reserve),
        left_out: 0,
    };
    findings(report, &mut b);
    drift(report, &mut b);
    changes(report, &mut b);
    let mut out = b.out;
    if b.left_out > 0 {
        out.push_str(&notice(b.left_out));
    }
    out
}

/// Items grouped by module, the root module first.
fn by_module<'a, T>(
    items: &'a [T],
    module: impl Fn(&'a T) -> Option<&'a str>,
) -> BTreeMap<Option<&'a str>, Vec<&'a T>> {
    let mut m: BTreeMap<Option<&str>, Vec<&T>> = BTreeMap::new();
    for i in items {
        m.entry(module(i)).or_default().push(i);
    }
    m
}

fn findings(report: &Report, b: &mut Budget) {
    if report.findings.is_empty() {
        return;
    }
    b.push("\n### Findings\n");
    for (module, items) in by_module(&report.findings, |f| f.module.as_deref()) {
        b.push(&format!(
            "\n**{}**\n\n| Risk | Resource | Finding |\n|---|---|---|\n",
            module_name(module)
        ));
        // Row by row, so a long table is cut between rows, not dropped.
        for f in items {
            b.push(&format!(
                "| {} {} | `{}` | {} <sub>`{}`</sub> |\n",
                icon(f.risk),
                f.risk,
                cell(f.local_address()),
                cell(&f.message),
                f.rule
            ));
        }
    }
    b.push("\n### What each finding is based on\n\n");
    for f in &report.findings {
        b.push(&evidence(f));
    }
}

fn evidence(f: &Finding) -> String {
    let mut s = format!(
        "<details><summary>{} <code>{}</code> · {}</summary>\n\n",
        icon(f.risk),
        f.address,
        f.rule
    );
    if f.reason.is_some() || !f.replace_paths.is_empty() {
        let _ = write!(s, "Terraform plans to {} it", f.action.verb());
        if let Some(r) = &f.reason {
            let _ = write!(s, " because {r}");
        }
        if !f.replace_paths.is_empty() {
            let paths: Vec<String> = f.replace_paths.iter().map(|p| format!("`{p}`")).collect();
            let _ = write!(s, "; forced by {}", paths.join(", "));
        }
        s.push_str(".\n\n");
    }
    if f.changes.is_empty() {
        s.push_str("No attribute of it changes: the finding is about the action itself.\n");
    } else {
        s.push_str("```diff\n");
        for c in &f.changes {
            let _ = writeln!(s, "{c}");
        }
        s.push_str("```\n");
    }
    s.push_str("\n</details>\n");
    s
}

fn drift(report: &Report, b: &mut Budget) {
    if report.drift.is_empty() {
        return;
    }
    b.push(&format!(
        "\n### Drift: {} resource(s) changed outside Terraform\n\nThe refresh found these; unless the configuration already matches, this plan undoes them.\n\n",
        report.drift.len()
    ));
    for d in &report.drift {
        let what = if d.action == Action::Delete {
            "deleted outside Terraform"
        } else {
            "changed outside Terraform"
        };
        let mut s = format!(
            "<details><summary><code>{}</code> {what}</summary>\n\n",
            d.address
        );
        if !d.changes.is_empty() {
            s.push_str("```diff\n");
            for c in &d.changes {
                let _ = writeln!(s, "{c}");
            }
            s.push_str("```\n");
        }
        s.push_str("\n</details>\n");
        b.push(&s);
    }
}

fn changes(report: &Report, b: &mut Budget) {
    if report.changes.is_empty() {
        return;
    }
    b.push("\n### All changes, by module\n\n");
    for (module, items) in by_module(&report.changes, |c| c.module.as_deref()) {
        let mut s = format!(
            "<details><summary>{} ({})</summary>\n\n",
            module_name(module),
            items.len()
        );
        for c in items {
            let _ = write!(s, "- {} `{}`", c.action.verb(), c.address);
            if c.importing {
                s.push_str(" (imported)");
            }
            if let Some(from) = &c.moved_from {
                let _ = write!(s, " (moved from `{from}`)");
            }
            if let Some(r) = &c.reason {
                let _ = write!(s, ", because {r}");
            }
            if !c.changed.is_empty() {
                let paths: Vec<String> = c.changed.iter().map(|p| format!("`{p}`")).collect();
                let _ = write!(s, ": {}", paths.join(", "));
            }
            s.push('\n');
        }
        s.push_str("\n</details>\n");
        b.push(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Plan;
    use serde_json::json;

    fn destroys(n: usize, module: Option<&str>) -> Vec<serde_json::Value> {
        (0..n)
            .map(|i| {
                let local = format!("tandem_s3_bucket.b{i}");
                let address = match module {
                    Some(m) => format!("{m}.{local}"),
                    None => local,
                };
                json!({"address": address, "module_address": module, "type": "tandem_s3_bucket",
                       "name": format!("b{i}"), "mode": "managed",
                       "change": {"actions": ["delete"], "before": {"bucket": format!("bucket-{i}")}, "after": null}})
            })
            .collect()
    }

    fn report(changes: Vec<serde_json::Value>) -> Report {
        Report::of(
            &Plan::parse(
                &json!({"format_version": "1.2", "resource_changes": changes}).to_string(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn the_first_line_is_the_marker_ci_finds_the_comment_by() {
        let r = report(destroys(1, None));
        let md = render(&r, &Options::default());
        assert_eq!(md.lines().next(), Some("<!-- tandem-review -->"));
        let named = Options {
            marker_id: Some("infra/prod".into()),
            ..Options::default()
        };
        let md = render(&r, &named);
        assert_eq!(md.lines().next(), Some("<!-- tandem-review:infra/prod -->"));
        // An ID cannot end the HTML comment early.
        assert_eq!(marker(Some("a-->b")), "<!-- tandem-review:a->b -->");
        assert!(md.contains("This plan reaches `--fail-on=high`"), "{md}");
    }

    #[test]
    fn findings_are_grouped_by_module_with_their_diff() {
        let mut changes = destroys(1, Some("module.eu"));
        changes.extend(destroys(1, None));
        let md = render(&report(changes), &Options::default());
        let root = md.find("**root module**").unwrap();
        let eu = md.find("**`module.eu`**").unwrap();
        assert!(root < eu, "{md}");
        assert!(md.contains("| 🔴 high | `tandem_s3_bucket.b0` |"), "{md}");
        assert!(md.contains("```diff\n- bucket = \"bucket-0\"\n```"), "{md}");
        assert!(md.contains("Plan: 0 to add, 0 to change, 2 to destroy."));
        assert!(!md.contains("cut to fit"));
    }

    #[test]
    fn a_long_review_is_cut_between_sections_under_the_limit_with_a_notice() {
        let r = report(destroys(3000, None));
        let full = render(
            &r,
            &Options {
                max_bytes: usize::MAX,
                ..Options::default()
            },
        );
        assert!(
            full.len() > 65_536,
            "the test needs a review over GitHub's limit"
        );
        let md = render(&r, &Options::default());
        assert!(md.len() <= MAX_COMMENT_BYTES, "{}", md.len());
        assert!(
            md.contains("This review was cut to fit GitHub's comment limit"),
            "{}",
            &md[md.len() - 400..]
        );
        // The cut falls between whole rows: the table's last line is a row.
        let before_notice = md[..md.find("\n> [!WARNING]").unwrap()].trim_end();
        assert!(
            before_notice.ends_with("stateful-destroyed</sub>` |")
                || before_notice.ends_with("</sub> |"),
            "{before_notice}"
        );
        assert!(md.starts_with("<!-- tandem-review -->\n"));
        // A small cap still keeps the head and the notice.
        let tiny = render(
            &r,
            &Options {
                max_bytes: 2000,
                ..Options::default()
            },
        );
        assert!(tiny.len() <= 2000 && tiny.contains("cut to fit"), "{tiny}");
    }

    #[test]
    fn no_findings_says_so() {
        let md = render(&report(vec![]), &Options::default());
        assert!(
            md.contains("**No changes.**") && md.contains("No risky changes found."),
            "{md}"
        );
    }
}
