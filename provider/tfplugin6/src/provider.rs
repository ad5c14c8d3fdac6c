//! What a provider implements: a [`Provider`] with its configuration, and
//! one [`Resource`] or [`DataSource`] per type. The server turns protocol
//! calls into these, decoding and encoding values with the schemas.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::diag::{AttrPath, Diagnostic, Diagnostics};
use crate::schema::{IdentitySchema, Schema};
use crate::value::Value;

/// Per-call context: the configured provider data, cancellation (Terraform's
/// StopProvider, e.g. on Ctrl-C) and a place for warnings.
pub struct Ctx<M> {
    meta: Option<Arc<M>>,
    cancel: CancellationToken,
    warnings: Mutex<Vec<Diagnostic>>,
}

impl<M> Ctx<M> {
    /// A context; the server builds these, tests may too.
    pub fn new(meta: Option<Arc<M>>, cancel: CancellationToken) -> Ctx<M> {
        Ctx {
            meta,
            cancel,
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The configured provider data. Errors before ConfigureProvider ran,
    /// which Terraform only allows during validation.
    pub fn meta(&self) -> Result<&M, Diagnostics> {
        self.meta.as_deref().ok_or_else(|| {
            Diagnostic::error(
                "Provider not configured",
                "This operation needs the provider configuration, which Terraform has not sent yet. This is a bug in the provider.",
            )
            .into()
        })
    }

    /// The configured provider data, if any (planning may run without it).
    pub fn meta_opt(&self) -> Option<&M> {
        self.meta.as_deref()
    }

    /// Cancelled when Terraform asks the provider to stop.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// True once Terraform asked the provider to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Records a warning returned with the call's result.
    pub fn warn(&self, d: Diagnostic) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(d);
        }
    }

    /// Takes the recorded warnings.
    pub fn take_warnings(&self) -> Vec<Diagnostic> {
        self.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }
}

/// The planning state a resource may adjust in [`Resource::modify_plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// State before the change; null on create.
    pub prior: Value,
    /// Configuration as written (unknowns where not yet known).
    pub config: Value,
    /// The planned new state, already filled by the default rules: computed
    /// attributes left null in config are unknown on create and keep their
    /// prior value on update; defaults are applied.
    pub planned: Value,
    /// Attribute paths whose change forces replacement.
    pub requires_replace: Vec<AttrPath>,
    /// Private data carried to apply.
    pub private: Vec<u8>,
}

impl Plan {
    /// True on create.
    pub fn is_create(&self) -> bool {
        self.prior.is_null()
    }

    /// True when `planned` differs from `prior` at the top level attribute.
    pub fn changed(&self, attr: &str) -> bool {
        self.prior.get(attr) != self.planned.get(attr)
    }

    /// Marks a top-level computed attribute unknown, because the change
    /// will give it a new value.
    pub fn set_unknown(&mut self, attr: &str) {
        self.planned.set(attr, Value::Unknown);
    }
}

/// Result of a successful create or update.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The new state, wholly known.
    pub state: Value,
    /// Private data stored with the state.
    pub private: Vec<u8>,
}

impl From<Value> for Applied {
    fn from(state: Value) -> Applied {
        Applied {
            state,
            private: Vec::new(),
        }
    }
}

/// A failed create or update. When something was created before the
/// failure, `partial` keeps it in state (tainted) so it is not leaked.
#[derive(Debug, Clone, Default)]
pub struct ApplyError {
    /// What went wrong.
    pub diagnostics: Diagnostics,
    /// State of what exists despite the failure.
    pub partial: Option<Value>,
}

impl From<Diagnostics> for ApplyError {
    fn from(d: Diagnostics) -> ApplyError {
        ApplyError {
            diagnostics: d,
            partial: None,
        }
    }
}

impl From<Diagnostic> for ApplyError {
    fn from(d: Diagnostic) -> ApplyError {
        ApplyError {
            diagnostics: d.into(),
            partial: None,
        }
    }
}

/// Result of a read.
#[derive(Debug, Clone)]
pub enum ReadResult {
    /// The object exists; its refreshed state.
    Found(Applied),
    /// The object is gone; the server drops it from state with a warning.
    Gone,
}

impl From<Option<Value>> for ReadResult {
    /// `None` (not found) is [`ReadResult::Gone`].
    fn from(state: Option<Value>) -> ReadResult {
        match state {
            Some(s) => ReadResult::Found(s.into()),
            None => ReadResult::Gone,
        }
    }
}

/// A managed resource type.
#[async_trait]
pub trait Resource<M>: Send + Sync {
    /// Type name, e.g. `tandem_route53_zone`.
    fn type_name(&self) -> &'static str;

    /// Schema with a description on every attribute.
    fn schema(&self) -> Schema;

    /// Identity schema, for resources that support identity-based import.
    fn identity_schema(&self) -> Option<IdentitySchema> {
        None
    }

    /// Identity of an object from its state. The default takes each
    /// identity attribute from the state attribute of the same name, and
    /// gives none while any of them is unset or unknown.
    fn identity(&self, state: &Value) -> Option<Value> {
        let schema = self.identity_schema()?;
        let mut out = Vec::with_capacity(schema.attributes.len());
        for a in &schema.attributes {
            let v = state.get(&a.name);
            if v.is_null() || !v.is_wholly_known() {
                return None;
            }
            out.push((a.name.clone(), v.clone()));
        }
        Some(Value::object(out))
    }

    /// Plan-time checks the schema's validators cannot express (rules that
    /// depend on another attribute's value); the server has run those
    /// validators already. Add every problem, each with its attribute path.
    /// Unknown values must not be reported.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Adjusts the default plan (e.g. marks computed values that will change).
    async fn modify_plan(&self, _ctx: &Ctx<M>, _plan: &mut Plan) -> Result<(), Diagnostics> {
        Ok(())
    }

    /// Creates the object.
    async fn create(
        &self,
        ctx: &Ctx<M>,
        planned: &Value,
        config: &Value,
    ) -> Result<Applied, ApplyError>;

    /// Refreshes the state from the real object.
    async fn read(
        &self,
        ctx: &Ctx<M>,
        state: &Value,
        private: &[u8],
    ) -> Result<ReadResult, Diagnostics>;

    /// Updates the object in place.
    async fn update(
        &self,
        ctx: &Ctx<M>,
        prior: &Value,
        planned: &Value,
        config: &Value,
        private: &[u8],
    ) -> Result<Applied, ApplyError>;

    /// Deletes the object; an object already gone is success.
    async fn delete(&self, ctx: &Ctx<M>, prior: &Value, private: &[u8]) -> Result<(), Diagnostics>;

    /// Turns an import ID into a (partial) state that `read` can complete.
    async fn import(&self, _ctx: &Ctx<M>, _id: &str) -> Result<Value, Diagnostics> {
        Err(Diagnostic::error(
            "Import not supported",
            format!("{} cannot be imported.", self.type_name()),
        )
        .into())
    }

    /// Turns identity data into an import ID, for `import { identity = ... }`.
    /// The default handles single-attribute identities, whose value is the ID.
    fn import_id_from_identity(&self, identity: &Value) -> Option<String> {
        match self.identity_schema()?.attributes.as_slice() {
            [only] => identity.get(&only.name).as_str().map(str::to_string),
            _ => None,
        }
    }

    /// Upgrades state written under an older schema version (as JSON) to the
    /// current schema. The default accepts only the current version.
    fn upgrade_state(&self, version: i64, json: &[u8]) -> Result<Value, Diagnostics> {
        let schema = self.schema();
        if version > schema.version {
            return Err(Diagnostic::error(
                "State written by a newer provider",
                format!(
                    "{} state has schema version {version}, but this provider only knows up to {}. Upgrade the provider.",
                    self.type_name(),
                    schema.version
                ),
            )
            .into());
        }
        crate::codec::decode_json(json, &schema.value_type()).map_err(|e| {
            Diagnostic::error(
                "Unreadable stored state",
                format!("{} state could not be read: {e}", self.type_name()),
            )
            .into()
        })
    }
}

/// A data source type.
#[async_trait]
pub trait DataSource<M>: Send + Sync {
    /// Type name.
    fn type_name(&self) -> &'static str;

    /// Schema with a description on every attribute.
    fn schema(&self) -> Schema;

    /// Plan-time checks beyond the schema's validators.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Reads the data; returns the full state object.
    async fn read(&self, ctx: &Ctx<M>, config: &Value) -> Result<Value, Diagnostics>;
}

/// A provider: its own configuration and its resource and data source types.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What `configure` produces and every call then receives (clients etc.).
    type Meta: Send + Sync + 'static;

    /// Provider block schema.
    fn schema(&self) -> Schema;

    /// Plan-time checks of the provider block beyond the schema's validators.
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}

    /// Configures the provider from its block.
    async fn configure(
        &self,
        terraform_version: &str,
        config: &Value,
    ) -> Result<Self::Meta, Diagnostics>;

    /// The resource types.
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Meta>>>;

    /// The data source types.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Meta>>>;
}
