//! `tandem_proxy_fleet_status`: what each proxy of a fleet reports right
//! now (config version, readiness, replica and breaker states, cache
//! figures), for outputs, `check` blocks and postconditions.

use async_trait::async_trait;
use tfplugin6::{Attribute, Block, Ctx, DataSource, Diagnostics, Schema, Type, Validator, Value};

use super::rollout;
use crate::aws::Aws;
use crate::provider::{url, URL};

/// The data source.
pub struct FleetStatusDataSource;

fn proxy_type() -> Type {
    Type::object([
        ("endpoint", Type::String),
        ("reachable", Type::Bool),
        ("ready", Type::Bool),
        ("status", Type::String),
        ("version", Type::String),
        ("config_version", Type::String),
        ("error", Type::String),
        ("replicas_json", Type::String),
        ("status_json", Type::String),
    ])
}

#[async_trait]
impl DataSource<Aws> for FleetStatusDataSource {
    fn type_name(&self) -> &'static str {
        "tandem_proxy_fleet_status"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "Reads each tandem-proxy's admin endpoint and reports its config version, readiness, replica and \
                 circuit-breaker states and cache figures. An unreachable proxy is reported, not an error, so the \
                 result can drive `check` blocks and postconditions.",
            )
            .attr(
                Attribute::required(
                    "endpoints",
                    Type::list(Type::String),
                    "Admin base URLs of the proxies, e.g. `http://10.0.1.5:9090`.",
                )
                .validate(Validator::each(Validator::format(URL, url))),
            )
            .attr(Attribute::computed("id", Type::String, "The endpoints, joined; stable while they are."))
            .attr(Attribute::computed(
                "proxies",
                Type::list(proxy_type()),
                "One entry per endpoint, in order: `endpoint`; `reachable`; `ready` (`/ready` answered 200); `status` \
                 (`ok`, `degraded` or `unavailable`); `version` (proxy build); `config_version` (the fleet config it \
                 runs); `error` (why it could not be read); `replicas_json` (per-replica health and breaker states, \
                 JSON); `status_json` (the full `/status` document: cache figures, failover counts; JSON).",
            ))
            .attr(Attribute::computed("ready_count", Type::Number, "How many proxies are ready."))
            .attr(Attribute::computed(
                "config_versions",
                Type::list(Type::String),
                "The distinct config versions reported, sorted; more than one means a rollout is in progress.",
            )),
        )
    }

    async fn read(&self, _ctx: &Ctx<Aws>, config: &Value) -> Result<Value, Diagnostics> {
        let endpoints: Vec<String> = config
            .get("endpoints")
            .as_list()
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let client = rollout::client().map_err(|e| {
            Diagnostics::from(tfplugin6::Diagnostic::error(
                "Reading proxy fleet status",
                e.to_string(),
            ))
        })?;
        let reports = rollout::futures_join(&client, &endpoints).await;
        let mut status_docs = Vec::with_capacity(reports.len());
        for r in &reports {
            // /status has the full picture; a proxy that answers /ready but
            // not /status is still reported with what /ready said.
            let doc = if r.error.is_none() {
                match client
                    .get(format!("{}/status", r.endpoint.trim_end_matches('/')))
                    .send()
                    .await
                {
                    Ok(resp) => resp.json::<serde_json::Value>().await.ok(),
                    Err(_) => None,
                }
            } else {
                None
            };
            status_docs.push(doc);
        }
        let mut versions: Vec<String> = reports
            .iter()
            .filter_map(|r| r.config_version.clone())
            .collect();
        versions.sort();
        versions.dedup();
        let proxies = reports
            .iter()
            .zip(status_docs)
            .map(|(r, doc)| {
                Value::object([
                    ("endpoint", Value::string(&r.endpoint)),
                    ("reachable", Value::Bool(r.error.is_none())),
                    ("ready", Value::Bool(r.http_status == Some(200))),
                    ("status", r.status.clone().into()),
                    ("version", r.version.clone().into()),
                    ("config_version", r.config_version.clone().into()),
                    ("error", r.error.clone().into()),
                    (
                        "replicas_json",
                        r.body
                            .as_ref()
                            .and_then(|b| b.get("replicas"))
                            .map(|x| x.to_string())
                            .into(),
                    ),
                    ("status_json", doc.map(|d| d.to_string()).into()),
                ])
            })
            .collect();
        let mut state = config.clone();
        state.set("id", Value::string(endpoints.join(",")));
        state.set("proxies", Value::List(proxies));
        state.set(
            "ready_count",
            Value::int(
                reports
                    .iter()
                    .filter(|r| r.http_status == Some(200))
                    .count() as i64,
            ),
        );
        state.set(
            "config_versions",
            Value::List(versions.into_iter().map(Value::String).collect()),
        );
        Ok(state)
    }
}
