//! Reading and writing the typed models resources keep their
//! configuration, plans and state in (see [`tfplugin6::model`]). Terraform
//! sends every attribute, so a model that does not fit the schema is a bug
//! in this provider, reported as such rather than read as nulls.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tfplugin6::value::ValueError;
use tfplugin6::{Diagnostic, Diagnostics, Schema, Value};

/// A model that does not fit its schema.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A value could not be read into the model.
    #[error("reading the {what} of {type_name}: {source}")]
    Read {
        /// The resource type.
        type_name: &'static str,
        /// Configuration, plan, prior state...
        what: &'static str,
        /// Why.
        #[source]
        source: ValueError,
    },
    /// The model could not be written as a value of the schema's type.
    #[error("writing a value of {type_name}: {source}")]
    Write {
        /// The resource type.
        type_name: &'static str,
        /// Why.
        #[source]
        source: ValueError,
    },
}

impl From<ModelError> for Diagnostics {
    fn from(e: ModelError) -> Diagnostics {
        Diagnostic::error(
            "Provider internal error",
            format!(
                "{}. This is a bug in terraform-provider-tandem; please report it.",
                tfplugin6::diag::error_chain(&e)
            ),
        )
        .into()
    }
}

impl From<ModelError> for tfplugin6::ApplyError {
    fn from(e: ModelError) -> tfplugin6::ApplyError {
        Diagnostics::from(e).into()
    }
}

/// Reads a configuration, plan or state of `schema`'s type (unknowns kept
/// as [`tfplugin6::Field::Unknown`]).
pub(crate) fn read<T: DeserializeOwned>(
    v: &Value,
    schema: &Schema,
    type_name: &'static str,
    what: &'static str,
) -> Result<T, ModelError> {
    v.to_config_model(&schema.value_type())
        .map_err(|source| ModelError::Read {
            type_name,
            what,
            source,
        })
}

/// `v` (read as `before`) with the changes of `after` written in, leaving
/// what the model did not change exactly as it was (see
/// [`Value::with_model_changes`]): how a plan a resource adjusted is
/// written back.
pub(crate) fn apply_changes<T: Serialize>(
    v: &Value,
    before: &T,
    after: &T,
    schema: &Schema,
    type_name: &'static str,
) -> Result<Value, ModelError> {
    v.with_model_changes(before, after, &schema.value_type())
        .map_err(|source| ModelError::Write { type_name, source })
}

/// Writes a model as a value of `schema`'s type.
pub(crate) fn write<T: Serialize>(
    m: &T,
    schema: &Schema,
    type_name: &'static str,
) -> Result<Value, ModelError> {
    Value::from_model(m, &schema.value_type())
        .map_err(|source| ModelError::Write { type_name, source })
}
