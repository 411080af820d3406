//! Driver ids mapped to factories that build a filesystem from a JSON config.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result, VfsError};
use crate::filesystem::FileSystem;

/// A driver named by id with its config, as `mountFs` receives it:
/// `{"id": "memory", "config": {}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriverDescriptor {
    /// The registry id.
    pub id: String,
    /// The driver's config; a missing or `null` config means `{}`.
    #[serde(default)]
    pub config: serde_json::Value,
}

impl DriverDescriptor {
    /// A descriptor with a config.
    pub fn new(id: impl Into<String>, config: serde_json::Value) -> DriverDescriptor {
        DriverDescriptor {
            id: id.into(),
            config,
        }
    }
}

/// Builds filesystems of one driver from JSON configs.
///
/// The registry is passed in so drivers that nest others (an overlay's layers) build them
/// through the same path.
#[async_trait]
pub trait DriverFactory: Send + Sync {
    /// Builds a filesystem; a config the driver does not accept is `EINVAL`.
    async fn build(
        &self,
        registry: &DriverRegistry,
        config: serde_json::Value,
    ) -> Result<Arc<dyn FileSystem>>;
}

/// A factory from a typed config and a closure; see [`DriverRegistry::register_fn`].
struct TypedFactory<C, F> {
    id: String,
    make: F,
    config: std::marker::PhantomData<fn() -> C>,
}

#[async_trait]
impl<C, F> DriverFactory for TypedFactory<C, F>
where
    C: DeserializeOwned + Send + 'static,
    F: Fn(C) -> Result<Arc<dyn FileSystem>> + Send + Sync,
{
    async fn build(
        &self,
        _registry: &DriverRegistry,
        config: serde_json::Value,
    ) -> Result<Arc<dyn FileSystem>> {
        let config: C = parse_config(&self.id, config)?;
        (self.make)(config)
    }
}

/// Parses a driver config, treating `null` as `{}` and naming the driver in the error.
pub fn parse_config<C: DeserializeOwned>(driver: &str, config: serde_json::Value) -> Result<C> {
    let config = match config {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    };
    serde_json::from_value(config).map_err(|err| {
        VfsError::new(ErrorKind::InvalidInput, "mount")
            .with_detail(format!("bad config for driver '{driver}': {err}"))
    })
}

/// Driver id -> factory. Built-in drivers and ones registered at runtime go through the same
/// path; registration and lookup take `&self`, so a shared registry grows while in use.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{DriverDescriptor, DriverRegistry, FileSystem, MountTable};
///
/// # async fn demo() -> vfs_core::Result<()> {
/// let registry = DriverRegistry::new();
/// registry.register_fn("table", |_config: serde_json::Value| {
///     Ok(Arc::new(MountTable::new()) as Arc<dyn FileSystem>)
/// })?;
/// let fs = registry.build(&DriverDescriptor::new("table", serde_json::json!({}))).await?;
/// assert_eq!(fs.kind(), "mount_table");
/// assert_eq!(registry.build(&DriverDescriptor::new("nope", Default::default())).await.err().unwrap().code(), "EINVAL");
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct DriverRegistry {
    factories: RwLock<BTreeMap<String, Arc<dyn DriverFactory>>>,
}

impl DriverRegistry {
    /// An empty registry.
    pub fn new() -> DriverRegistry {
        DriverRegistry::default()
    }

    /// Registers a factory under `id`; an id already taken is `EEXIST`.
    pub fn register(&self, id: &str, factory: Arc<dyn DriverFactory>) -> Result<()> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(
                VfsError::new(ErrorKind::InvalidInput, "register").with_detail(format!(
                    "driver id {id:?} must be ASCII letters, digits, '_', '-' or '.'"
                )),
            );
        }
        let mut factories = self.factories.write();
        if factories.contains_key(id) {
            return Err(VfsError::new(ErrorKind::AlreadyExists, "register")
                .with_detail(format!("driver '{id}' is already registered")));
        }
        factories.insert(id.to_owned(), factory);
        Ok(())
    }

    /// Registers a driver whose config deserializes into `C` (give `C`
    /// `#[serde(deny_unknown_fields)]` to reject unknown fields) and whose filesystem `make`
    /// builds from it.
    pub fn register_fn<C, F>(&self, id: &str, make: F) -> Result<()>
    where
        C: DeserializeOwned + Send + 'static,
        F: Fn(C) -> Result<Arc<dyn FileSystem>> + Send + Sync + 'static,
    {
        self.register(
            id,
            Arc::new(TypedFactory {
                id: id.to_owned(),
                make,
                config: std::marker::PhantomData,
            }),
        )
    }

    /// The registered ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.factories.read().keys().cloned().collect()
    }

    /// Builds the filesystem a descriptor names; an unknown id or a bad config is `EINVAL`.
    pub async fn build(&self, descriptor: &DriverDescriptor) -> Result<Arc<dyn FileSystem>> {
        let factory = self.factories.read().get(&descriptor.id).cloned();
        let Some(factory) = factory else {
            return Err(
                VfsError::new(ErrorKind::InvalidInput, "mount").with_detail(format!(
                    "unknown driver '{}' (registered: {})",
                    descriptor.id,
                    self.ids().join(", ")
                )),
            );
        };
        factory.build(self, descriptor.config.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MountTable;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct TableConfig {
        #[serde(default)]
        label: Option<String>,
    }

    fn registry() -> DriverRegistry {
        let registry = DriverRegistry::new();
        registry
            .register_fn("table", |config: TableConfig| {
                if config.label.as_deref() == Some("refuse") {
                    return Err(
                        VfsError::new(ErrorKind::InvalidInput, "mount").with_detail("refused")
                    );
                }
                Ok(Arc::new(MountTable::new()) as Arc<dyn FileSystem>)
            })
            .unwrap();
        registry
    }

    fn build(
        registry: &DriverRegistry,
        id: &str,
        config: serde_json::Value,
    ) -> Result<Arc<dyn FileSystem>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(registry.build(&DriverDescriptor::new(id, config)))
    }

    #[test]
    fn builds_from_a_descriptor_with_missing_null_or_empty_config() {
        let registry = registry();
        for config in [
            serde_json::Value::Null,
            serde_json::json!({}),
            serde_json::json!({"label": "x"}),
        ] {
            assert_eq!(
                build(&registry, "table", config).unwrap().kind(),
                "mount_table"
            );
        }
        let descriptor: DriverDescriptor = serde_json::from_str(r#"{"id": "table"}"#).unwrap();
        assert_eq!(descriptor.config, serde_json::Value::Null);
    }

    #[test]
    fn unknown_id_is_einval_and_names_the_known_ones() {
        let err = build(&registry(), "s4", serde_json::Value::Null)
            .err()
            .unwrap();
        assert_eq!(err.code(), "EINVAL");
        assert!(
            err.to_string()
                .contains("unknown driver 's4' (registered: table)"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_einval() {
        let registry = registry();
        let err = build(&registry, "table", serde_json::json!({"lable": "x"}))
            .err()
            .unwrap();
        assert_eq!(err.code(), "EINVAL");
        assert!(err.to_string().contains("unknown field `lable`"), "{err}");
        let err = build(&registry, "table", serde_json::json!({"label": 7}))
            .err()
            .unwrap();
        assert_eq!(err.code(), "EINVAL");
        let err = build(&registry, "table", serde_json::json!({"label": "refuse"}))
            .err()
            .unwrap();
        assert!(err.to_string().contains("refused"));
    }

    #[test]
    fn descriptors_reject_unknown_fields() {
        let parsed = serde_json::from_str::<DriverDescriptor>(r#"{"id": "table", "conf": {}}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn duplicate_and_malformed_ids_are_refused() {
        let registry = registry();
        let again = registry.register_fn("table", |_: TableConfig| {
            Ok(Arc::new(MountTable::new()) as Arc<dyn FileSystem>)
        });
        assert_eq!(again.unwrap_err().code(), "EEXIST");
        for bad in ["", "has space", "slash/y"] {
            let result = registry.register_fn(bad, |_: TableConfig| {
                Ok(Arc::new(MountTable::new()) as Arc<dyn FileSystem>)
            });
            assert_eq!(result.unwrap_err().code(), "EINVAL", "{bad:?}");
        }
        assert_eq!(registry.ids(), ["table"]);
    }

    #[test]
    fn drivers_register_at_runtime_through_a_shared_reference() {
        let registry = Arc::new(registry());
        let threads: Vec<_> = (0..4)
            .map(|n| {
                let registry = registry.clone();
                std::thread::spawn(move || {
                    registry
                        .register_fn(&format!("user-{n}"), |_: TableConfig| {
                            Ok(Arc::new(MountTable::new()) as Arc<dyn FileSystem>)
                        })
                        .unwrap();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(registry.ids().len(), 5);
        assert!(build(&registry, "user-3", serde_json::Value::Null).is_ok());
    }
}
