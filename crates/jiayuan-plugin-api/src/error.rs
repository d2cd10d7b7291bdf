//! [`PluginError`]: plain data, so it can cross the boundary and be rendered by the host.

use serde::{Deserialize, Serialize};

/// One problem with one field of the input, in Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    /// The field's name as declared in the manifest (`data.breed`, or `breed`).
    pub field: String,
    /// A stable machine-readable code, e.g. `banned_breed`, `check_digit`, `required`.
    pub code: String,
    /// 中文说明.
    pub message_zh: String,
    /// English explanation.
    pub message_en: String,
}

impl FieldViolation {
    /// A violation of `field` with a stable `code` and messages in both languages.
    pub fn new(field: &str, code: &str, message_zh: impl Into<String>, message_en: impl Into<String>) -> Self {
        FieldViolation {
            field: field.to_owned(),
            code: code.to_owned(),
            message_zh: message_zh.into(),
            message_en: message_en.into(),
        }
    }
}

/// Everything a plugin call can fail with. Holds no trait objects or foreign types, only data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The input breaks the item's rules; nothing is written. Rendered as HTTP 422.
    #[error("invalid input: {}", render_violations(.0))]
    Invalid(Vec<FieldViolation>),
    /// The request conflicts with the current state (e.g. a duplicate chip number). HTTP 409.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Something the plugin needed does not exist. HTTP 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// The plugin's own configuration is unusable.
    #[error("plugin configuration: {0}")]
    Config(String),
    /// The plugin panicked; the guard compiled into the plugin caught it.
    #[error("plugin panicked: {0}")]
    Panicked(String),
    /// A host service the plugin called failed (or panicked, caught by the host's guard).
    #[error("host service failed: {0}")]
    Host(String),
    /// Any other failure inside the plugin.
    #[error("plugin failed: {0}")]
    Internal(String),
}

impl PluginError {
    /// A single-field [`PluginError::Invalid`].
    pub fn invalid(field: &str, code: &str, message_zh: impl Into<String>, message_en: impl Into<String>) -> Self {
        PluginError::Invalid(vec![FieldViolation::new(field, code, message_zh, message_en)])
    }
}

fn render_violations(v: &[FieldViolation]) -> String {
    v.iter().map(|v| format!("{}: {} ({})", v.field, v.message_en, v.code)).collect::<Vec<_>>().join("; ")
}
