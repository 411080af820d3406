//! The overlay's JSON config and its registry factory.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vfs_core::{
    async_trait, parse_config, DriverDescriptor, DriverFactory, DriverRegistry, FileSystem, Result,
};

use super::OverlayFs;

/// The configuration of an [`OverlayFs`]: the upper and the lowers as nested driver
/// descriptors, each built through the registry, so any registered driver (another
/// overlay included) can be a layer. Unknown fields are rejected.
///
/// ```
/// use vfs_drivers::overlay::OverlayConfig;
///
/// let config: OverlayConfig = serde_json::from_str(
///     r#"{"upper": {"id": "memory", "config": {}}, "lowers": [{"id": "memory"}]}"#,
/// )?;
/// assert_eq!(config.upper.id, "memory");
/// assert_eq!(config.lowers.len(), 1);
/// assert!(serde_json::from_str::<OverlayConfig>(r#"{"upper": {"id": "memory"}, "lower": []}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OverlayConfig {
    /// The writable layer; every change lands here.
    pub upper: DriverDescriptor,
    /// The read-only layers, topmost first. Never written.
    pub lowers: Vec<DriverDescriptor>,
    /// The lowers may change beside the overlay (the same host directory mounted writable
    /// elsewhere): look paths up afresh instead of caching (see
    /// [`OverlayFs::lowers_may_change`]). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lowers_may_change: bool,
}

/// Builds [`OverlayFs`] from an [`OverlayConfig`], building each layer through the
/// registry it is given; the overlay owns those layers and shuts them down when it is
/// shut down. Register it as `"overlay"`:
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{DriverDescriptor, DriverRegistry, FileSystem};
/// use vfs_drivers::memory::MemoryFs;
/// use vfs_drivers::overlay::OverlayFactory;
///
/// # futures::executor::block_on(async {
/// let registry = DriverRegistry::new();
/// registry.register_fn("memory", |_: serde_json::Value| {
///     Ok(Arc::new(MemoryFs::new()) as Arc<dyn FileSystem>)
/// })?;
/// registry.register("overlay", Arc::new(OverlayFactory))?;
/// let config = serde_json::json!({"upper": {"id": "memory"}, "lowers": [{"id": "memory"}]});
/// let fs = registry.build(&DriverDescriptor::new("overlay", config)).await?;
/// assert_eq!(fs.kind(), "overlay");
/// # Ok::<(), vfs_core::VfsError>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct OverlayFactory;

#[async_trait]
impl DriverFactory for OverlayFactory {
    async fn build(
        &self,
        registry: &DriverRegistry,
        config: serde_json::Value,
    ) -> Result<Arc<dyn FileSystem>> {
        let config: OverlayConfig = parse_config("overlay", config)?;
        let upper = registry.build(&config.upper).await?;
        let mut lowers = Vec::with_capacity(config.lowers.len());
        for lower in &config.lowers {
            lowers.push(registry.build(lower).await?);
        }
        let mut overlay = OverlayFs::new(upper, lowers)?.owning_layers();
        if config.lowers_may_change {
            overlay = overlay.lowers_may_change();
        }
        Ok(Arc::new(overlay))
    }
}
