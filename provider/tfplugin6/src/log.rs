//! Logging to stderr in hclog's JSON line format. go-plugin reads a
//! plugin's stderr and re-logs each JSON line at its own level under the
//! provider's name, so `TF_LOG=debug` (or `TF_LOG_PROVIDER`) shows ours
//! alongside Terraform's.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the stderr logger. The level comes from `TF_LOG_PROVIDER`,
/// then `TF_LOG`, as for Go providers; default is warnings only, since
/// Terraform discards plugin logs unless asked.
pub fn init(module: &'static str) {
    let level = std::env::var("TF_LOG_PROVIDER")
        .or_else(|_| std::env::var("TF_LOG"))
        .map(|l| match l.to_ascii_lowercase().as_str() {
            "trace" | "json" => "trace",
            "debug" => "debug",
            "info" => "info",
            "error" => "error",
            _ => "warn",
        })
        .unwrap_or("warn");
    // Dependencies (h2, rustls, the AWS SDK) are chatty at debug level and
    // would bury our own lines; they log at warn unless TANDEM_LOG says otherwise.
    let ours =
        format!("warn,tfplugin6={level},tandem_provider={level},terraform_provider_tandem={level}");
    let filter = EnvFilter::try_from_env("TANDEM_LOG").unwrap_or_else(|_| EnvFilter::new(ours));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(HclogJson { module })
        .try_init();
    // Panics become one log line and a diagnostic (see server::guarded),
    // never a backtrace dumped into Terraform's output.
    std::panic::set_hook(Box::new(|info| {
        let loc = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(location = %loc, "panic: {}", panic_message(info));
    }));
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    info.payload()
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// One JSON object per event with hclog's keys.
struct HclogJson {
    module: &'static str,
}

impl<S, N> FormatEvent<S, N> for HclogJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            Level::TRACE => "trace",
            Level::DEBUG => "debug",
            Level::INFO => "info",
            Level::WARN => "warn",
            Level::ERROR => "error",
        };
        let mut obj = serde_json::Map::new();
        obj.insert("@level".into(), level.into());
        obj.insert("@module".into(), self.module.into());
        obj.insert(
            "@timestamp".into(),
            humantime::format_rfc3339_micros(std::time::SystemTime::now())
                .to_string()
                .into(),
        );
        let mut v = JsonVisitor {
            obj: &mut obj,
            message: String::new(),
        };
        event.record(&mut v);
        let mut message = std::mem::take(&mut v.message);
        if let Some(scope) = ctx.event_scope() {
            let mut names = String::new();
            for span in scope.from_root() {
                let _ = write!(
                    names,
                    "{}{}",
                    if names.is_empty() { "" } else { ":" },
                    span.name()
                );
            }
            if !names.is_empty() {
                message = format!("{names}: {message}");
            }
        }
        obj.insert("@message".into(), message.into());
        writeln!(w, "{}", serde_json::Value::Object(obj))
    }
}

struct JsonVisitor<'a> {
    obj: &'a mut serde_json::Map<String, serde_json::Value>,
    message: String,
}

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.obj
                .insert(field.name().into(), format!("{value:?}").into());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.obj.insert(field.name().into(), value.into());
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.obj.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.obj.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.obj.insert(field.name().into(), value.into());
    }
}
