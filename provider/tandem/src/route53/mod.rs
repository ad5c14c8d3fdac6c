//! Route 53: hosted zones, health checks and atomic failover record sets.

use std::sync::Arc;

use tfplugin6::{DataSource, Resource};

use crate::aws::Aws;

/// Route 53 resource types.
pub fn resources() -> Vec<Arc<dyn Resource<Aws>>> {
    vec![]
}

/// Route 53 data source types.
pub fn data_sources() -> Vec<Arc<dyn DataSource<Aws>>> {
    vec![]
}
