//! `tandem-proxy --config FILE` serves; `tandem-proxy check --config FILE`
//! validates a fleet config and lists every problem with its path (exit 1),
//! or prints the `config_version` the proxy would report (exit 0).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::path::PathBuf;

use anyhow::{bail, Context};
use tandem_proxy::source::{S3Source, Source};
use tandem_proxy::{check_file, CheckOutcome};

const USAGE: &str = "usage: tandem-proxy [check] --config FILE|s3://BUCKET/KEY [options]

  tandem-proxy --config FILE         serve (SIGHUP or a file change reloads; SIGTERM drains)
  tandem-proxy --config s3://B/K     serve the document tandem_proxy_fleet publishes, polling it
  tandem-proxy check --config FILE   validate and print the config_version, or every problem

Options:
  --data-listen ADDR        override listen.data (e.g. several proxies sharing one document)
  --admin-listen ADDR       override listen.admin
  --workers N               data-path threads, each with its own event loop (default: one per CPU)

Options for an s3:// config:
  --config-region REGION    region of the config bucket (default $AWS_REGION, else us-east-1)
  --config-endpoint URL     custom S3 endpoint (path-style), e.g. http://127.0.0.1:9000
  --state-dir DIR           where the last good document is kept (default $STATE_DIRECTORY,
                            else /var/lib/tandem-proxy); credentials come from the AWS chain

Logging: RUST_LOG sets the filter (default info); TANDEM_LOG_FORMAT=json or
--log-format json writes one JSON object per line.";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut check = false;
    let mut config = None;
    let mut log_format = std::env::var("TANDEM_LOG_FORMAT").unwrap_or_else(|_| "text".into());
    let mut region = None;
    let mut endpoint = None;
    let mut state_dir = None;
    let mut listen = tandem_proxy::server::ListenOverride::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "check" => check = true,
            "serve" => {}
            "--config" | "-c" => config = Some(args.next().context(USAGE)?),
            "--config-region" => region = Some(args.next().context(USAGE)?),
            "--config-endpoint" => endpoint = Some(args.next().context(USAGE)?),
            "--data-listen" => listen.data = Some(args.next().context(USAGE)?),
            "--admin-listen" => listen.admin = Some(args.next().context(USAGE)?),
            "--workers" => {
                let n = args.next().context(USAGE)?;
                listen.workers = Some(
                    n.parse()
                        .with_context(|| format!("--workers {n:?}: expected a number"))?,
                );
            }
            "--state-dir" => state_dir = Some(PathBuf::from(args.next().context(USAGE)?)),
            "--log-format" => log_format = args.next().context(USAGE)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "-V" | "--version" => {
                println!("tandem-proxy {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    let config = config.context(USAGE)?;
    if check {
        return run_check(std::path::Path::new(&config));
    }
    init_logging(&log_format)?;
    // Two rustls providers are compiled in (ring here, aws-lc for the
    // provider's certificate checks elsewhere in the workspace); rediss://
    // connections take the process default, so name it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let source = if config.starts_with("s3://") {
        let region = region
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        let state_dir = state_dir
            .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/lib/tandem-proxy"));
        Source::S3(Box::new(S3Source::new(
            &config,
            &region,
            endpoint.as_deref(),
            Some(&state_dir),
        )?))
    } else {
        if region.is_some() || endpoint.is_some() {
            bail!("--config-region and --config-endpoint apply to an s3:// config only");
        }
        Source::File(PathBuf::from(config))
    };
    // The control runtime (signals, admin, reload, breaker probes); the
    // data path runs on the worker threads `server::run` starts.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    if let Err(e) = rt.block_on(tandem_proxy::server::run(source, listen)) {
        tracing::error!(error = %e, "tandem-proxy stopped");
        eprintln!("tandem-proxy: {e}");
        std::process::exit(1);
    }
    Ok(())
}

fn init_logging(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal; log files and collectors get text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        "json" => b.json().flatten_event(true).init(),
        "text" => b.init(),
        other => bail!("--log-format {other:?}: expected text or json"),
    }
    Ok(())
}

fn run_check(config: &std::path::Path) -> anyhow::Result<()> {
    match check_file(config) {
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
