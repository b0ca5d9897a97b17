//! The one error type of the core; each variant maps to a Python exception.

use thiserror::Error;

/// Everything that can go wrong in a call to the core. A call that returns an
/// error has changed nothing.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    #[error("unknown {kind} {id:?}")]
    UnknownId { kind: &'static str, id: String },
    #[error("duplicate {kind} {id:?}: {kind} ids must be unique")]
    DuplicateId { kind: &'static str, id: String },
    #[error("{0}")]
    InvalidTransition(String),
    #[error("{field}: {problem}")]
    InvalidConfig { field: String, problem: String },
    #[error("{field}: {problem}")]
    InvalidInput { field: String, problem: String },
    #[error("snapshot: {0}")]
    Snapshot(String),
    #[error("invariant violated: {0}")]
    Invariant(String),
}

impl Error {
    /// The short name of the error's kind, as reported in batch results.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownId { .. } => "unknown_id",
            Error::DuplicateId { .. } => "duplicate_id",
            Error::InvalidTransition(_) => "invalid_transition",
            Error::InvalidConfig { .. } => "invalid_config",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Snapshot(_) => "snapshot",
            Error::Invariant(_) => "invariant",
        }
    }

    pub(crate) fn config(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidConfig { field: field.into(), problem: problem.into() }
    }

    pub(crate) fn input(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::InvalidInput { field: field.into(), problem: problem.into() }
    }

    pub(crate) fn unknown(kind: &'static str, id: impl Into<String>) -> Self {
        Error::UnknownId { kind, id: id.into() }
    }
}

impl From<rmp_serde::decode::Error> for Error {
    fn from(e: rmp_serde::decode::Error) -> Self {
        Error::input("batch", e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
