//! `tandem-review PLAN.json [--fail-on low|medium|high] [--out FILE]`:
//! prints a Markdown review of `terraform show -json` output and exits 2
//! when a finding reaches the `--fail-on` level (default high), so a CI job
//! can require a human approval for risky plans. `-` reads standard input.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::io::Read as _;

use anyhow::{bail, Context};
use tandem_review::Risk;

/// Default threshold: only changes that can cause an outage or data loss
/// block the pipeline; medium findings are shown but do not fail it.
const DEFAULT_FAIL_ON: Risk = Risk::High;
/// Exit status for "review needed", distinct from 1 (tool error).
const EXIT_RISKY: i32 = 2;

fn main() -> anyhow::Result<()> {
    let mut input = None;
    let mut fail_on = DEFAULT_FAIL_ON;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fail-on" => fail_on = args.next().context("--fail-on needs a level")?.parse()?,
            "--out" => out = Some(args.next().context("--out needs a file")?),
            "-h" | "--help" => {
                println!(
                    "usage: tandem-review PLAN.json|- [--fail-on low|medium|high] [--out FILE]"
                );
                return Ok(());
            }
            _ if input.is_none() => input = Some(a),
            _ => bail!("unexpected argument {a:?}"),
        }
    }
    let input = input
        .context("usage: tandem-review PLAN.json|- [--fail-on low|medium|high] [--out FILE]")?;
    let text = if input == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&input).with_context(|| format!("reading {input}"))?
    };
    let plan = tandem_review::parse(&text)?;
    let findings = tandem_review::review(&plan);
    let md = tandem_review::markdown(&plan, &findings);
    match out {
        Some(f) => std::fs::write(&f, &md).with_context(|| format!("writing {f}"))?,
        None => print!("{md}"),
    }
    if findings.iter().any(|f| f.risk >= fail_on) {
        eprintln!("tandem-review: findings at or above {fail_on}; failing as requested");
        std::process::exit(EXIT_RISKY);
    }
    Ok(())
}
