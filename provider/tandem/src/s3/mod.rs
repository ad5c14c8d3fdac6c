//! S3: buckets, versioning and cross-region replication.

use std::sync::Arc;

use tfplugin6::{DataSource, Resource};

use crate::aws::Aws;

/// S3 resource types.
pub fn resources() -> Vec<Arc<dyn Resource<Aws>>> {
    vec![]
}

/// S3 data source types.
pub fn data_sources() -> Vec<Arc<dyn DataSource<Aws>>> {
    vec![]
}
