//! Helpers for unit tests: validation as the server runs it (the schema's
//! validators, then the type's own checks).

use tfplugin6::validate::validate_block;
use tfplugin6::{DataSource, Diagnostics, Resource, Severity, Value};

use crate::aws::Aws;

/// Every finding for a resource configuration.
pub(crate) fn validate_resource(r: &dyn Resource<Aws>, config: &Value) -> Diagnostics {
    let mut d = validate_block(&r.schema().block, config);
    r.validate(config, &mut d);
    d
}

/// Every finding for a data source configuration.
pub(crate) fn validate_data_source(r: &dyn DataSource<Aws>, config: &Value) -> Diagnostics {
    let mut d = validate_block(&r.schema().block, config);
    r.validate(config, &mut d);
    d
}

/// The paths of the errors (not warnings), in order.
pub(crate) fn error_paths(d: &Diagnostics) -> Vec<String> {
    d.0.iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| x.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
        .collect()
}
