//! The mount table a runtime boots with, as a TOML or JSON file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vfs_core::{DriverDescriptor, MountOptions};

use super::error::ActionError;

/// The mounts to attach at boot, in order (parents before children).
///
/// TOML:
///
/// ```
/// use vfs_layer::actions::MountsConfig;
///
/// let config = MountsConfig::from_toml_str(r#"
///     [[mounts]]
///     path = "/"
///     driver = { id = "memory" }
///
///     [[mounts]]
///     path = "/data"
///     driver = { id = "host_dir", config = { hostPath = "/srv/data", readOnly = true } }
///     options = { readOnly = true }
/// "#).unwrap();
/// assert_eq!(config.mounts.len(), 2);
/// assert!(config.mounts[1].options.read_only);
/// ```
///
/// JSON: `{"mounts": [{"path": "/", "driver": {"id": "memory"}}]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountsConfig {
    /// The mounts, mounted in this order.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
}

/// One mount: where, which driver with which config, how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountSpec {
    /// The absolute mount path.
    pub path: String,
    /// The driver id and config (`plugin` accepted, as agentOS names it).
    #[serde(alias = "plugin")]
    pub driver: DriverDescriptor,
    /// `{readOnly}`.
    #[serde(default)]
    pub options: MountOptions,
    /// agentOS's descriptor puts `readOnly` beside the path; either sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

impl MountSpec {
    /// The options with a top-level `readOnly` folded in.
    pub fn mount_options(&self) -> MountOptions {
        let mut options = self.options;
        if let Some(read_only) = self.read_only {
            options.read_only |= read_only;
        }
        options
    }
}

impl MountsConfig {
    /// Parses TOML; a syntax error or an unknown field is `EINVAL` naming where.
    pub fn from_toml_str(text: &str) -> Result<MountsConfig, ActionError> {
        toml::from_str(text)
            .map_err(|err| ActionError::invalid(format!("bad mounts config: {err}")))
    }

    /// Parses JSON; a syntax error or an unknown field is `EINVAL` naming where.
    pub fn from_json_str(text: &str) -> Result<MountsConfig, ActionError> {
        serde_json::from_str(text)
            .map_err(|err| ActionError::invalid(format!("bad mounts config: {err}")))
    }

    /// Reads a `.toml` or `.json` file (chosen by extension; any other is `EINVAL`).
    pub fn load(path: &Path) -> Result<MountsConfig, ActionError> {
        let shown = path.display().to_string();
        let extension = path.extension().and_then(|ext| ext.to_str()).unwrap_or("");
        let parse: fn(&str) -> Result<MountsConfig, ActionError> = match extension {
            "toml" => MountsConfig::from_toml_str,
            "json" => MountsConfig::from_json_str,
            _ => {
                return Err(
                    ActionError::invalid("a mounts config file ends in .toml or .json")
                        .with_path(shown),
                )
            }
        };
        let text = std::fs::read_to_string(path).map_err(|err| {
            ActionError::from(
                vfs_core::VfsError::from_io("read mounts config", err).with_path(shown.clone()),
            )
        })?;
        parse(&text).map_err(|err| err.with_path(shown))
    }
}
