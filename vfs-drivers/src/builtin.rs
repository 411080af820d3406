//! The built-in drivers, registered under the ids agentOS uses.

use std::sync::Arc;

use vfs_core::{DriverRegistry, FileSystem, Result};

use crate::host::HostFs;
use crate::memory::{MemoryConfig, MemoryFs};
use crate::overlay::OverlayFactory;

/// Registers `memory`, `host_dir` and `overlay` in `registry`; an id already taken there
/// is `EEXIST`.
pub fn register_builtins(registry: &DriverRegistry) -> Result<()> {
    registry.register_fn("memory", |config: MemoryConfig| {
        Ok(Arc::new(MemoryFs::with_config(config)) as Arc<dyn FileSystem>)
    })?;
    registry.register_fn("host_dir", HostFs::build)?;
    registry.register_fn("s3", crate::object::ObjectFs::build("s3"))?;
    registry.register_fn("object", crate::object::ObjectFs::build("object"))?;
    registry.register("overlay", Arc::new(OverlayFactory))
}

/// A registry holding the built-in drivers, ready for user drivers beside them.
///
/// ```
/// use vfs_core::DriverDescriptor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> vfs_core::Result<()> {
/// let registry = vfs_drivers::builtin_registry();
/// let fs = registry
///     .build(&DriverDescriptor::new("memory", serde_json::json!({"maxBytes": 1048576})))
///     .await?;
/// assert_eq!(fs.kind(), "memory");
/// let refused = registry
///     .build(&DriverDescriptor::new("memory", serde_json::json!({"maxBites": 1})))
///     .await;
/// assert_eq!(refused.err().map(|err| err.code()), Some("EINVAL"));
/// # Ok(()) }
/// ```
pub fn builtin_registry() -> DriverRegistry {
    let registry = DriverRegistry::new();
    // A fresh registry has no ids yet, so the built-ins cannot collide.
    if let Err(err) = register_builtins(&registry) {
        unreachable!("built-in drivers collided in an empty registry: {err}");
    }
    registry
}
