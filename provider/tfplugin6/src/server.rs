//! The tfplugin6 `Provider` gRPC service: decodes each call with the right
//! schema, dispatches to the provider's resources, and turns every failure
//! (including a panic) into diagnostics rather than a gRPC error.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::codec;
use crate::diag::{AttrPath, Diagnostic, Diagnostics, Severity, Step};
use crate::plan::default_plan;
use crate::proto::tfplugin6 as pb;
use crate::provider::{ApplyError, Ctx, DataSource, Plan, Provider, ReadResult, Resource};
use crate::schema::Schema;
use crate::types::Type;
use crate::validate::validate_block;
use crate::value::Value;

struct ResourceEntry<M> {
    imp: Arc<dyn Resource<M>>,
    schema: Schema,
    ty: Type,
}

struct DataSourceEntry<M> {
    imp: Arc<dyn DataSource<M>>,
    schema: Schema,
    ty: Type,
}

/// The gRPC service for one provider.
pub struct ProviderService<P: Provider> {
    provider: Arc<P>,
    provider_schema: Schema,
    resources: Arc<BTreeMap<String, ResourceEntry<P::Meta>>>,
    data_sources: Arc<BTreeMap<String, DataSourceEntry<P::Meta>>>,
    meta: Arc<RwLock<Option<Arc<P::Meta>>>>,
    stop: Arc<Mutex<CancellationToken>>,
}

impl<P: Provider> ProviderService<P> {
    /// Builds the service; schemas are computed once here, since Terraform
    /// asks for them several times per run.
    pub fn new(provider: P) -> ProviderService<P> {
        let resources = provider
            .resources()
            .into_iter()
            .map(|imp| {
                let schema = imp.schema();
                let ty = schema.value_type();
                (
                    imp.type_name().to_string(),
                    ResourceEntry { imp, schema, ty },
                )
            })
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|imp| {
                let schema = imp.schema();
                let ty = schema.value_type();
                (
                    imp.type_name().to_string(),
                    DataSourceEntry { imp, schema, ty },
                )
            })
            .collect();
        ProviderService {
            provider_schema: provider.schema(),
            provider: Arc::new(provider),
            resources: Arc::new(resources),
            data_sources: Arc::new(data_sources),
            meta: Arc::new(RwLock::new(None)),
            stop: Arc::new(Mutex::new(CancellationToken::new())),
        }
    }

    /// The token cancelled by the next StopProvider.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn ctx(&self) -> Ctx<P::Meta> {
        let meta = self.meta.read().ok().and_then(|m| m.clone());
        Ctx::new(meta, self.stop_token().child_token())
    }

    fn resource(&self, name: &str) -> Result<&ResourceEntry<P::Meta>, Diagnostics> {
        self.resources.get(name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown resource type",
                format!("This provider has no resource type {name:?}."),
            )
            .into()
        })
    }

    fn data_source(&self, name: &str) -> Result<&DataSourceEntry<P::Meta>, Diagnostics> {
        self.data_sources.get(name).ok_or_else(|| {
            Diagnostic::error(
                "Unknown data source type",
                format!("This provider has no data source {name:?}."),
            )
            .into()
        })
    }

    /// Schema message for GetProviderSchema; also used by tests and docs.
    pub fn schema_response(&self) -> pb::get_provider_schema::Response {
        pb::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, e)| (k.clone(), e.schema.to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, e)| (k.clone(), e.schema.to_proto()))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(capabilities()),
            functions: HashMap::new(),
        }
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        // Lets core reuse its cached schema on the 2nd and later launches
        // within one run, saving a full schema build per launch.
        get_provider_schema_optional: true,
        move_resource_state: false,
        generate_resource_config: false,
    }
}

// ------------------------------------------------------------ conversions

fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else { return Ok(Value::Null) };
    let res = if !dv.msgpack.is_empty() {
        codec::decode_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        codec::decode_json(&dv.json, ty)
    } else {
        return Ok(Value::Null);
    };
    res.map_err(|e| {
        Diagnostic::error(
            format!("Unreadable {what}"),
            format!("Terraform sent a {what} that does not match the schema: {e}"),
        )
        .into()
    })
}

fn encode(v: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostics> {
    codec::encode_msgpack(v, ty)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: vec![],
        })
        .map_err(|e| {
            Diagnostic::error(
                "Provider produced an invalid value",
                format!(
                    "The {what} does not match the schema: {e}. This is a bug in the provider."
                ),
            )
            .into()
        })
}

fn path_to_proto(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    Step::Attr(a) => Selector::AttributeName(a.clone()),
                    Step::Key(k) => Selector::ElementKeyString(k.clone()),
                    Step::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

fn diags_to_proto(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    d.0.iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary.clone(),
            detail: d.detail.clone(),
            attribute: d.path.as_ref().map(path_to_proto),
        })
        .collect()
}

fn with_warnings<M>(ctx: &Ctx<M>, mut d: Diagnostics) -> Diagnostics {
    let mut all = Diagnostics(ctx.take_warnings());
    all.0.append(&mut d.0);
    all
}

/// Runs a handler, turning a panic into an error diagnostic: a provider
/// bug must show up as a readable message, not as a crashed plugin.
async fn guarded<T, F>(rpc: &'static str, type_name: &str, fut: F) -> Result<T, Diagnostics>
where
    F: Future<Output = Result<T, Diagnostics>>,
{
    let span = tracing::info_span!("rpc", rpc, type_name);
    match AssertUnwindSafe(fut).catch_unwind().instrument(span).await {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            tracing::error!(rpc, type_name, panic = msg, "provider panicked");
            Err(Diagnostic::error(
                "Provider internal error",
                format!("{rpc} for {type_name} failed unexpectedly: {msg}. This is a bug in terraform-provider-tandem; please report it with the configuration that triggered it."),
            )
            .into())
        }
    }
}

// ------------------------------------------------------------ the service

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<P: Provider> pb::provider_server::Provider for ProviderService<P> {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> R<pb::get_metadata::Response> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: vec![],
            data_sources: self
                .data_sources
                .keys()
                .map(|k| pb::get_metadata::DataSourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            resources: self
                .resources
                .keys()
                .map(|k| pb::get_metadata::ResourceMetadata {
                    type_name: k.clone(),
                })
                .collect(),
            functions: vec![],
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> R<pb::get_provider_schema::Response> {
        Ok(Response::new(self.schema_response()))
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<pb::get_resource_identity_schemas::Request>,
    ) -> R<pb::get_resource_identity_schemas::Response> {
        Ok(Response::new(pb::get_resource_identity_schemas::Response {
            identity_schemas: self
                .resources
                .iter()
                .filter_map(|(k, e)| e.imp.identity_schema().map(|s| (k.clone(), s.to_proto())))
                .collect(),
            diagnostics: vec![],
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> R<pb::validate_provider_config::Response> {
        let req = req.into_inner();
        let ty = self.provider_schema.value_type();
        let diags = guarded("ValidateProviderConfig", "provider", async {
            let config = decode(req.config.as_ref(), &ty, "provider configuration")?;
            let mut d = validate_block(&self.provider_schema.block, &config);
            self.provider.validate(&config, &mut d);
            Ok(d)
        })
        .await
        .unwrap_or_else(|e| e);
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> R<pb::validate_resource_config::Response> {
        let req = req.into_inner();
        let diags = guarded("ValidateResourceConfig", &req.type_name, async {
            let e = self.resource(&req.type_name)?;
            let config = decode(req.config.as_ref(), &e.ty, "resource configuration")?;
            let mut d = validate_block(&e.schema.block, &config);
            e.imp.validate(&config, &mut d);
            Ok(d)
        })
        .await
        .unwrap_or_else(|e| e);
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> R<pb::validate_data_resource_config::Response> {
        let req = req.into_inner();
        let diags = guarded("ValidateDataResourceConfig", &req.type_name, async {
            let e = self.data_source(&req.type_name)?;
            let config = decode(req.config.as_ref(), &e.ty, "data source configuration")?;
            let mut d = validate_block(&e.schema.block, &config);
            e.imp.validate(&config, &mut d);
            Ok(d)
        })
        .await
        .unwrap_or_else(|e| e);
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> R<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        let res = guarded("UpgradeResourceState", &req.type_name, async {
            let e = self.resource(&req.type_name)?;
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                if raw.flatmap.is_empty() {
                    return encode(&Value::Null, &e.ty, "upgraded state");
                }
                return Err(Diagnostic::error(
                    "Legacy state format",
                    "This state was written in Terraform 0.11's flatmap format, which this provider does not read. Re-import the resource.",
                )
                .into());
            }
            let v = e.imp.upgrade_state(req.version, &raw.json)?;
            encode(&v, &e.ty, "upgraded state")
        })
        .await;
        Ok(Response::new(match res {
            Ok(dv) => pb::upgrade_resource_state::Response {
                upgraded_state: Some(dv),
                diagnostics: vec![],
            },
            Err(d) => pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: diags_to_proto(&d),
            },
        }))
    }

    async fn upgrade_resource_identity(
        &self,
        req: Request<pb::upgrade_resource_identity::Request>,
    ) -> R<pb::upgrade_resource_identity::Response> {
        let req = req.into_inner();
        let res = guarded("UpgradeResourceIdentity", &req.type_name, async {
            let e = self.resource(&req.type_name)?;
            let schema = e.imp.identity_schema().ok_or_else(|| {
                Diagnostics::from(Diagnostic::error(
                    "No identity",
                    format!("{} has no resource identity.", req.type_name),
                ))
            })?;
            let ty = schema.value_type();
            let raw = req.raw_identity.unwrap_or_default();
            let v = codec::decode_json(&raw.json, &ty).map_err(|err| {
                Diagnostics::from(Diagnostic::error("Unreadable identity", err.to_string()))
            })?;
            encode(&v, &ty, "identity")
        })
        .await;
        Ok(Response::new(match res {
            Ok(dv) => pb::upgrade_resource_identity::Response {
                upgraded_identity: Some(pb::ResourceIdentityData {
                    identity_data: Some(dv),
                }),
                diagnostics: vec![],
            },
            Err(d) => pb::upgrade_resource_identity::Response {
                upgraded_identity: None,
                diagnostics: diags_to_proto(&d),
            },
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> R<pb::configure_provider::Response> {
        let req = req.into_inner();
        let ty = self.provider_schema.value_type();
        let diags = guarded("ConfigureProvider", "provider", async {
            let config = decode(req.config.as_ref(), &ty, "provider configuration")?;
            let meta = self
                .provider
                .configure(&req.terraform_version, &config)
                .await?;
            if let Ok(mut m) = self.meta.write() {
                *m = Some(Arc::new(meta));
            }
            Ok(Diagnostics::new())
        })
        .await
        .unwrap_or_else(|e| e);
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags_to_proto(&diags),
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> R<pb::read_resource::Response> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let res = guarded("ReadResource", &req.type_name, async {
            let e = self.resource(&req.type_name)?;
            let state = decode(req.current_state.as_ref(), &e.ty, "state")?;
            if state.is_null() {
                return Ok((Value::Null, req.private.clone(), None));
            }
            match e.imp.read(&ctx, &state, &req.private).await? {
                ReadResult::Found(a) => {
                    let identity = e.imp.identity(&a.state);
                    Ok((a.state, a.private, identity))
                }
                ReadResult::Gone => {
                    ctx.warn(Diagnostic::warning(
                        format!("{} no longer exists", req.type_name),
                        "The object was not found, so it has been removed from the Terraform state. The next plan will propose to create it again.",
                    ));
                    Ok((Value::Null, vec![], None))
                }
            }
        })
        .await;
        let e = self.resources.get(&req.type_name);
        Ok(Response::new(match (res, e) {
            (Ok((state, private, identity)), Some(e)) => {
                match encode(&state, &e.ty, "refreshed state") {
                    Ok(dv) => pb::read_resource::Response {
                        new_state: Some(dv),
                        diagnostics: diags_to_proto(&with_warnings(&ctx, Diagnostics::new())),
                        private,
                        deferred: None,
                        new_identity: identity_data(e, identity.as_ref()),
                    },
                    Err(d) => pb::read_resource::Response {
                        diagnostics: diags_to_proto(&d),
                        ..Default::default()
                    },
                }
            }
            (Ok(_), None) => unreachable!("resource() succeeded above"),
            (Err(d), _) => pb::read_resource::Response {
                // Keep the prior state on failure so nothing is lost.
                new_state: req.current_state.clone(),
                private: req.private.clone(),
                diagnostics: diags_to_proto(&with_warnings(&ctx, d)),
                ..Default::default()
            },
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> R<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let res = guarded("PlanResourceChange", &req.type_name, async {
            let e = self.resource(&req.type_name)?;
            let prior = decode(req.prior_state.as_ref(), &e.ty, "prior state")?;
            let proposed = decode(req.proposed_new_state.as_ref(), &e.ty, "proposed state")?;
            let config = decode(req.config.as_ref(), &e.ty, "configuration")?;
            if proposed.is_null() {
                // Destroy: nothing to plan.
                return Ok((
                    encode(&Value::Null, &e.ty, "plan")?,
                    vec![],
                    req.prior_private.clone(),
                ));
            }
            let (planned, requires_replace) =
                default_plan(&e.schema.block, &prior, &proposed, &config);
            let mut plan = Plan {
                prior,
                config,
                planned,
                requires_replace,
                private: req.prior_private.clone(),
            };
            e.imp.modify_plan(&ctx, &mut plan).await?;
            let dv = encode(&plan.planned, &e.ty, "planned state")?;
            Ok((dv, plan.requires_replace, plan.private))
        })
        .await;
        Ok(Response::new(match res {
            Ok((planned, replace, private)) => pb::plan_resource_change::Response {
                planned_state: Some(planned),
                requires_replace: replace.iter().map(path_to_proto).collect(),
                planned_private: private,
                diagnostics: diags_to_proto(&with_warnings(&ctx, Diagnostics::new())),
                legacy_type_system: false,
                deferred: None,
                planned_identity: req.prior_identity.clone(),
            },
            Err(d) => pb::plan_resource_change::Response {
                diagnostics: diags_to_proto(&with_warnings(&ctx, d)),
                ..Default::default()
            },
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> R<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let res: Result<(Value, Vec<u8>), (Diagnostics, Option<Value>)> = async {
            let e = self.resource(&req.type_name).map_err(|d| (d, None))?;
            let decoded = (|| {
                Ok::<_, Diagnostics>((
                    decode(req.prior_state.as_ref(), &e.ty, "prior state")?,
                    decode(req.planned_state.as_ref(), &e.ty, "planned state")?,
                    decode(req.config.as_ref(), &e.ty, "configuration")?,
                ))
            })();
            let (prior, planned, config) = decoded.map_err(|d| (d, None))?;
            let outcome: Result<Result<(Value, Vec<u8>), ApplyError>, Diagnostics> = guarded("ApplyResourceChange", &req.type_name, async {
                Ok(if planned.is_null() {
                    e.imp.delete(&ctx, &prior, &req.planned_private).await.map(|()| (Value::Null, vec![])).map_err(ApplyError::from)
                } else if prior.is_null() {
                    e.imp.create(&ctx, &planned, &config).await.map(|a| (a.state, a.private))
                } else {
                    e.imp.update(&ctx, &prior, &planned, &config, &req.planned_private).await.map(|a| (a.state, a.private))
                })
            })
            .await;
            match outcome {
                Err(d) => Err((d, if prior.is_null() { None } else { Some(prior) })),
                Ok(Err(ae)) => {
                    // On a failed update or delete the object still exists
                    // as it was; keep it in state unless told otherwise.
                    let keep = ae.partial.or(if prior.is_null() { None } else { Some(prior) });
                    Err((ae.diagnostics, keep))
                }
                Ok(Ok((state, private))) => {
                    if !state.is_wholly_known() {
                        return Err((
                            Diagnostic::error(
                                "Provider returned unknown values after apply",
                                format!("{} left a value unknown after apply. This is a bug in the provider.", req.type_name),
                            )
                            .into(),
                            Some(state),
                        ));
                    }
                    Ok((state, private))
                }
            }
        }
        .await;
        let e = self.resources.get(&req.type_name);
        let ty = e.map(|e| e.ty.clone()).unwrap_or(Type::Dynamic);
        Ok(Response::new(match res {
            Ok((state, private)) => match encode(&state, &ty, "new state") {
                Ok(dv) => pb::apply_resource_change::Response {
                    new_identity: e.and_then(|e| identity_data(e, e.imp.identity(&state).as_ref())),
                    new_state: Some(dv),
                    private,
                    diagnostics: diags_to_proto(&with_warnings(&ctx, Diagnostics::new())),
                    legacy_type_system: false,
                },
                Err(d) => pb::apply_resource_change::Response {
                    diagnostics: diags_to_proto(&d),
                    ..Default::default()
                },
            },
            Err((d, keep)) => {
                let keep = keep.unwrap_or(Value::Null);
                let state = encode(&keep, &ty, "partial state").ok();
                pb::apply_resource_change::Response {
                    new_identity: e.and_then(|e| identity_data(e, e.imp.identity(&keep).as_ref())),
                    new_state: state,
                    private: req.planned_private.clone(),
                    diagnostics: diags_to_proto(&with_warnings(&ctx, d)),
                    legacy_type_system: false,
                }
            }
        }))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> R<pb::import_resource_state::Response> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let res = guarded("ImportResourceState", &req.type_name, async {
            let e = self.resource(&req.type_name)?;
            let mut id = req.id.clone();
            if id.is_empty() {
                if let (Some(schema), Some(ident)) =
                    (e.imp.identity_schema(), req.identity.as_ref())
                {
                    let v = decode(
                        ident.identity_data.as_ref(),
                        &schema.value_type(),
                        "identity",
                    )?;
                    id = e.imp.import_id_from_identity(&v).unwrap_or_default();
                }
            }
            if id.is_empty() {
                return Err(Diagnostic::error(
                    "Missing import ID",
                    format!("Importing {} needs an ID.", req.type_name),
                )
                .into());
            }
            let state = e.imp.import(&ctx, &id).await?;
            Ok(pb::import_resource_state::ImportedResource {
                type_name: req.type_name.clone(),
                identity: identity_data(e, e.imp.identity(&state).as_ref())
                    .or(req.identity.clone()),
                state: Some(encode(&state, &e.ty, "imported state")?),
                private: vec![],
            })
        })
        .await;
        Ok(Response::new(match res {
            Ok(r) => pb::import_resource_state::Response {
                imported_resources: vec![r],
                diagnostics: diags_to_proto(&with_warnings(&ctx, Diagnostics::new())),
                deferred: None,
            },
            Err(d) => pb::import_resource_state::Response {
                diagnostics: diags_to_proto(&with_warnings(&ctx, d)),
                ..Default::default()
            },
        }))
    }

    async fn move_resource_state(
        &self,
        req: Request<pb::move_resource_state::Request>,
    ) -> R<pb::move_resource_state::Response> {
        let req = req.into_inner();
        let d = Diagnostics::from(Diagnostic::error(
            "Move not supported",
            format!(
                "{} cannot be moved from {}.",
                req.target_type_name, req.source_type_name
            ),
        ));
        Ok(Response::new(pb::move_resource_state::Response {
            diagnostics: diags_to_proto(&d),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> R<pb::read_data_source::Response> {
        let req = req.into_inner();
        let ctx = self.ctx();
        let res = guarded("ReadDataSource", &req.type_name, async {
            let e = self.data_source(&req.type_name)?;
            let config = decode(req.config.as_ref(), &e.ty, "configuration")?;
            let state = e.imp.read(&ctx, &config).await?;
            encode(&state, &e.ty, "data source state")
        })
        .await;
        Ok(Response::new(match res {
            Ok(dv) => pb::read_data_source::Response {
                state: Some(dv),
                diagnostics: diags_to_proto(&with_warnings(&ctx, Diagnostics::new())),
                deferred: None,
            },
            Err(d) => pb::read_data_source::Response {
                diagnostics: diags_to_proto(&with_warnings(&ctx, d)),
                ..Default::default()
            },
        }))
    }

    async fn generate_resource_config(
        &self,
        req: Request<pb::generate_resource_config::Request>,
    ) -> R<pb::generate_resource_config::Response> {
        let d = Diagnostics::from(Diagnostic::error(
            "Config generation not supported",
            format!(
                "{} does not generate configuration; write it from the imported state.",
                req.into_inner().type_name
            ),
        ));
        Ok(Response::new(pb::generate_resource_config::Response {
            config: None,
            diagnostics: diags_to_proto(&d),
        }))
    }

    async fn get_functions(
        &self,
        _: Request<pb::get_functions::Request>,
    ) -> R<pb::get_functions::Response> {
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> R<pb::call_function::Response> {
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!("this provider has no function {:?}", req.into_inner().name),
                function_argument: None,
            }),
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> R<pb::stop_provider::Response> {
        // Cancel what is in flight, then arm a fresh token: Terraform may
        // still call Shutdown or further RPCs on this same server.
        if let Ok(mut t) = self.stop.lock() {
            t.cancel();
            *t = CancellationToken::new();
        }
        tracing::info!("stop requested: in-flight operations cancelled");
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

fn identity_data<M>(
    e: &ResourceEntry<M>,
    identity: Option<&Value>,
) -> Option<pb::ResourceIdentityData> {
    let schema = e.imp.identity_schema()?;
    let v = identity?;
    let dv = encode(v, &schema.value_type(), "identity").ok()?;
    Some(pb::ResourceIdentityData {
        identity_data: Some(dv),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tfplugin6::provider_server::Provider as _;
    use crate::provider::Applied;
    use crate::schema::{Attribute, Block};
    use async_trait::async_trait;
    use tokio::sync::Notify;

    /// A resource whose read blocks until cancelled and whose create panics.
    struct Probe {
        reading: Arc<Notify>,
    }

    #[async_trait]
    impl Resource<()> for Probe {
        fn type_name(&self) -> &'static str {
            "test_probe"
        }
        fn schema(&self) -> Schema {
            Schema::new(Block::new("probe").attr(Attribute::optional("id", Type::String, "id")))
        }
        async fn create(&self, _: &Ctx<()>, _: &Value, _: &Value) -> Result<Applied, ApplyError> {
            panic!("boom in create")
        }
        async fn read(
            &self,
            ctx: &Ctx<()>,
            _: &Value,
            _: &[u8],
        ) -> Result<ReadResult, Diagnostics> {
            self.reading.notify_one();
            ctx.cancel_token().cancelled().await;
            Err(Diagnostic::error("cancelled", "stopped by Terraform").into())
        }
        async fn update(
            &self,
            _: &Ctx<()>,
            _: &Value,
            p: &Value,
            _: &Value,
            _: &[u8],
        ) -> Result<Applied, ApplyError> {
            Ok(p.clone().into())
        }
        async fn delete(&self, _: &Ctx<()>, _: &Value, _: &[u8]) -> Result<(), Diagnostics> {
            Ok(())
        }
    }

    struct P {
        reading: Arc<Notify>,
    }

    #[async_trait]
    impl Provider for P {
        type Meta = ();
        fn schema(&self) -> Schema {
            Schema::new(Block::new("test provider"))
        }
        async fn configure(&self, _: &str, _: &Value) -> Result<(), Diagnostics> {
            Ok(())
        }
        fn resources(&self) -> Vec<Arc<dyn Resource<()>>> {
            vec![Arc::new(Probe {
                reading: self.reading.clone(),
            })]
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource<()>>> {
            vec![]
        }
    }

    fn state() -> pb::DynamicValue {
        let ty = Type::object([("id", Type::String)]);
        pb::DynamicValue {
            msgpack: codec::encode_msgpack(&Value::object([("id", Value::string("x"))]), &ty)
                .unwrap(),
            json: vec![],
        }
    }

    #[tokio::test]
    async fn stop_provider_cancels_in_flight_work_but_not_the_server() {
        let reading = Arc::new(Notify::new());
        let svc = Arc::new(ProviderService::new(P {
            reading: reading.clone(),
        }));
        let s2 = svc.clone();
        let read = tokio::spawn(async move {
            s2.read_resource(Request::new(pb::read_resource::Request {
                type_name: "test_probe".into(),
                current_state: Some(state()),
                ..Default::default()
            }))
            .await
        });
        reading.notified().await;
        svc.stop_provider(Request::new(pb::stop_provider::Request {}))
            .await
            .unwrap();
        let resp = tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics[0].summary, "cancelled");
        // The prior state is kept when a read fails, so nothing is lost.
        assert_eq!(resp.new_state.unwrap().msgpack, state().msgpack);
        // Later calls get a fresh, live token.
        assert!(!svc.stop_token().is_cancelled());
        assert!(svc
            .get_provider_schema(Request::new(pb::get_provider_schema::Request {}))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_panicking_resource_becomes_a_diagnostic() {
        let svc = ProviderService::new(P {
            reading: Arc::new(Notify::new()),
        });
        let resp = svc
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: "test_probe".into(),
                planned_state: Some(state()),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let d = &resp.diagnostics[0];
        assert_eq!(d.summary, "Provider internal error");
        assert!(d.detail.contains("boom in create"), "{}", d.detail);
        assert!(!d.detail.contains("backtrace"));
    }

    #[tokio::test]
    async fn unknown_type_names_are_diagnostics_not_grpc_errors() {
        let svc = ProviderService::new(P {
            reading: Arc::new(Notify::new()),
        });
        let resp = svc
            .validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: "test_nope".into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.diagnostics[0].summary, "Unknown resource type");
    }
}
