//! The proxy fleet: its published config, rollout, status and manifests.

pub mod manifests;
pub mod proxy_fleet;
pub mod rollout;
pub mod status;

use std::sync::Arc;

use tfplugin6::{DataSource, Resource};

use crate::aws::Aws;

/// Proxy fleet resource types.
pub fn resources() -> Vec<Arc<dyn Resource<Aws>>> {
    vec![Arc::new(proxy_fleet::ProxyFleetResource)]
}

/// Proxy fleet data source types.
pub fn data_sources() -> Vec<Arc<dyn DataSource<Aws>>> {
    vec![
        Arc::new(manifests::ManifestsDataSource),
        Arc::new(status::FleetStatusDataSource),
    ]
}
