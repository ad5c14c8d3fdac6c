//! `tandem-docs`: writes (or with `--check`, verifies) the registry docs.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::path::PathBuf;

use anyhow::{bail, Context};

const USAGE: &str = "usage: tandem-docs --schema SCHEMA.json [--examples DIR] [--out DIR] [--provider ADDR] [--check]";

fn main() -> anyhow::Result<()> {
    let mut schema = None;
    let mut examples = PathBuf::from("examples");
    let mut out = PathBuf::from("docs");
    let mut provider = String::from("registry.terraform.io/tandem/tandem");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--schema" => schema = args.next().map(PathBuf::from),
            "--examples" => examples = args.next().map(PathBuf::from).context(USAGE)?,
            "--out" => out = args.next().map(PathBuf::from).context(USAGE)?,
            "--provider" => provider = args.next().context(USAGE)?,
            "--check" => check = true,
            _ => bail!("unknown argument {a:?}\n{USAGE}"),
        }
    }
    let schema = schema.context(USAGE)?;
    let text = std::fs::read_to_string(&schema)
        .with_context(|| format!("reading {}", schema.display()))?;
    let doc: tandem_docgen::SchemaDoc =
        serde_json::from_str(&text).map_err(tandem_docgen::DocError::from)?;
    let pages = tandem_docgen::render_all(&doc, &provider, &examples)?;
    let stale = tandem_docgen::write_or_check(&pages, &out, check)?;
    if check && !stale.is_empty() {
        eprintln!("docs are stale; run `make docs` and commit the result:");
        for p in &stale {
            eprintln!("  {}", out.join(p).display());
        }
        std::process::exit(1);
    }
    if !check {
        println!(
            "{} pages written under {} ({} changed)",
            pages.len(),
            out.display(),
            stale.len()
        );
    }
    Ok(())
}
