//! One debug line per AWS request attempt, for `TF_LOG=debug`: the service,
//! the operation, which attempt it was (retries count up), the HTTP status
//! and how long it took, so a slow or retried apply shows where its time
//! went. Nothing else of the request: no headers (the Authorization header
//! and session token live there), no bodies, no URLs. A test runs Terraform
//! at `TF_LOG=debug` and greps its whole log for the credentials.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// The interceptor every SDK client of the provider carries.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallLog;

/// When the current attempt was handed to the HTTP client.
#[derive(Debug, Clone, Copy)]
struct AttemptStart(Instant);

impl Storable for AttemptStart {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "TandemCallLog"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStart(Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("unknown", "unknown"), |m| (m.service(), m.name()));
        let attempt = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let duration_ms = cfg
            .load::<AttemptStart>()
            .map(|s| s.0.elapsed().as_secs_f64() * 1000.0);
        // None: no answer (a connect failure or timeout, or a cancelled call).
        let status = context.response().map(|r| r.status().as_u16());
        tracing::debug!(service, operation, attempt, status, duration_ms, "AWS call");
        Ok(())
    }
}
