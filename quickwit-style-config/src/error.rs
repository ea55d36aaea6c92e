use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The document is not valid YAML/JSON or does not have the expected shape.
    #[error("failed to parse config: {0}")]
    Parse(String),
    /// The document parsed but a value breaks a rule; `path` names the field.
    #[error("invalid `{path}`: {message}")]
    Invalid { path: String, message: String },
    #[error("environment variable `{0}` is not set and has no default (use `${{{0}:-default}}`)")]
    MissingEnvVar(String),
}

impl ConfigError {
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
