//! `tandem-proxy`: `check --config FILE` validates a fleet config and lists
//! every problem with its path (exit 1), or prints the `config_version` the
//! proxy would report (exit 0).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::path::PathBuf;

use anyhow::{bail, Context};
use tandem_proxy::{check_file, CheckOutcome};

const USAGE: &str = "usage: tandem-proxy check --config FILE";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut sub = None;
    let mut config = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "check" => sub = Some("check"),
            "--config" | "-c" => config = Some(PathBuf::from(args.next().context(USAGE)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    let config = config.context(USAGE)?;
    if sub != Some("check") {
        // Serving is the data-path work of issue 5; say so plainly rather
        // than pretend to serve.
        eprintln!("tandem-proxy: serving is not built yet; only `check` is available.\n{USAGE}");
        std::process::exit(2);
    }
    match check_file(&config) {
        CheckOutcome::Valid {
            config_version,
            routes,
        } => {
            println!(
                "{}: ok ({routes} bucket route(s), config_version {config_version})",
                config.display()
            );
            Ok(())
        }
        CheckOutcome::Invalid(problems) => {
            for p in &problems {
                println!("{p}");
            }
            eprintln!("{}: {} problem(s)", config.display(), problems.len());
            std::process::exit(1);
        }
    }
}
