//! `tandem-docs`: writes (or with `--check`, verifies) the registry docs
//! (`--schema`) and the module READMEs' Inputs/Outputs tables (`--modules`).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::path::PathBuf;

use anyhow::{bail, Context};

const USAGE: &str = "usage: tandem-docs [--schema SCHEMA.json [--examples DIR] [--out DIR] [--provider ADDR]] [--modules DIR] [--check]";

fn main() -> anyhow::Result<()> {
    let mut schema = None;
    let mut examples = PathBuf::from("examples");
    let mut out = PathBuf::from("docs");
    let mut provider = String::from("registry.terraform.io/tandem/tandem");
    let mut modules = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--schema" => schema = args.next().map(PathBuf::from),
            "--examples" => examples = args.next().map(PathBuf::from).context(USAGE)?,
            "--out" => out = args.next().map(PathBuf::from).context(USAGE)?,
            "--provider" => provider = args.next().context(USAGE)?,
            "--modules" => modules = args.next().map(PathBuf::from),
            "--check" => check = true,
            _ => bail!("unknown argument {a:?}\n{USAGE}"),
        }
    }
    if schema.is_none() && modules.is_none() {
        bail!("give --schema, --modules or both\n{USAGE}");
    }
    let mut stale = Vec::new();
    let mut pages = 0;
    if let Some(schema) = schema {
        let text = std::fs::read_to_string(&schema)
            .with_context(|| format!("reading {}", schema.display()))?;
        let doc: tandem_docgen::SchemaDoc =
            serde_json::from_str(&text).map_err(tandem_docgen::DocError::from)?;
        let rendered = tandem_docgen::render_all(&doc, &provider, &examples)?;
        pages = rendered.len();
        let changed = tandem_docgen::write_or_check(&rendered, &out, check)?;
        stale.extend(changed.iter().map(|p| out.join(p)));
    }
    if let Some(dir) = modules {
        stale.extend(module_readmes(&dir, check)?);
    }
    if check && !stale.is_empty() {
        eprintln!("docs are stale; run `make docs` and commit the result:");
        for p in &stale {
            eprintln!("  {}", p.display());
        }
        std::process::exit(1);
    }
    if !check {
        println!(
            "{} pages written under {} ({} files changed, module READMEs included)",
            pages,
            out.display(),
            stale.len()
        );
    }
    Ok(())
}

/// Brings each module README's Inputs/Outputs section up to date (or only
/// lists the stale ones, with `check`); returns the READMEs that were, or
/// would be, changed.
fn module_readmes(dir: &std::path::Path, check: bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut modules: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("variables.tf").exists())
        .collect();
    modules.sort();
    let mut changed = Vec::new();
    for m in modules {
        let (readme, old, new) = tandem_docgen::modules::updated_readme(&m)?;
        if old != new {
            if !check {
                std::fs::write(&readme, &new)
                    .with_context(|| format!("writing {}", readme.display()))?;
            }
            changed.push(readme);
        }
    }
    Ok(changed)
}
