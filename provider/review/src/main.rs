//! `tandem-review PLAN.json`: reviews `terraform show -json` output and
//! writes a Markdown pull-request comment (or JSON, or SARIF). It exits 2
//! when a finding reaches `--fail-on` (default high), so a CI job can
//! require a human approval for risky plans; 1 on any error; 0 otherwise.
//! Every option can also come from a `TANDEM_REVIEW_*` environment variable.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use tandem_review::{markdown, sarif, Plan, Report, Risk, Threshold};

/// Exit status for "a human must approve this plan", distinct from 1 (an
/// error of the tool or its input).
const EXIT_RISKY: i32 = 2;
/// Exit status for an error, including a bad command line (clap's own
/// would be 2, which means "risky" here).
const EXIT_ERROR: i32 = 1;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// A pull-request comment with a hidden marker.
    Markdown,
    /// Everything, for other tools.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// Reviews a Terraform plan for changes risky to multi-region availability.
#[derive(Debug, Parser)]
#[command(name = "tandem-review", version)]
struct Cli {
    /// `terraform show -json PLANFILE` output; `-` reads standard input.
    #[arg(env = "TANDEM_REVIEW_PLAN")]
    plan: String,
    /// Output format.
    #[arg(
        long,
        value_enum,
        default_value = "markdown",
        env = "TANDEM_REVIEW_FORMAT"
    )]
    format: Format,
    /// Write the output here instead of standard output.
    #[arg(long, env = "TANDEM_REVIEW_OUT")]
    out: Option<PathBuf>,
    /// Exit 2 when a finding reaches this risk: low, medium, high, or none.
    #[arg(long, default_value = "high", env = "TANDEM_REVIEW_FAIL_ON")]
    fail_on: Threshold,
    /// Names this review in its comment's hidden marker, to keep one comment
    /// per Terraform root on a pull request.
    #[arg(long, env = "TANDEM_REVIEW_MARKER")]
    marker: Option<String>,
    /// Largest Markdown comment, in bytes; longer ones are cut with a notice.
    #[arg(long, default_value_t = markdown::MAX_COMMENT_BYTES, env = "TANDEM_REVIEW_MAX_BYTES")]
    max_bytes: usize,
    /// The Terraform root directory, as SARIF results should name it
    /// (relative to the repository root).
    #[arg(long, default_value = ".", env = "TANDEM_REVIEW_SOURCE_DIR")]
    source_dir: PathBuf,
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    match run(&cli) {
        Ok(report) => {
            if report.fails(cli.fail_on) {
                let top = report.highest().unwrap_or(Risk::High);
                eprintln!(
                    "tandem-review: highest risk {top} reaches --fail-on={}; this plan needs a human approval",
                    cli.fail_on
                );
                std::process::exit(EXIT_RISKY);
            }
        }
        Err(e) => {
            eprintln!("tandem-review: {e:#}");
            std::process::exit(EXIT_ERROR);
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<Report> {
    let text = if cli.plan == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the plan from standard input")?;
        s
    } else {
        std::fs::read_to_string(&cli.plan).with_context(|| format!("reading {}", cli.plan))?
    };
    let plan = Plan::parse(&text)?;
    let report = Report::of(&plan);
    let rendered = match cli.format {
        Format::Markdown => markdown::render(
            &report,
            &markdown::Options {
                marker_id: cli.marker.clone(),
                threshold: cli.fail_on,
                max_bytes: cli.max_bytes,
            },
        ),
        Format::Json => report.to_json(cli.fail_on),
        Format::Sarif => sarif::render(
            &report,
            &sarif::Locator {
                root: cli.source_dir.clone(),
                configuration: plan.configuration.clone(),
            },
        ),
    };
    match &cli.out {
        Some(f) => {
            std::fs::write(f, &rendered).with_context(|| format!("writing {}", f.display()))?
        }
        None => print!("{rendered}"),
    }
    Ok(report)
}
