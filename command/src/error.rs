use crate::StoreError;

/// A rule of the domain refused the command. Each front door turns these into its own
/// envelope, status code and message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Other writers kept changing the aggregate through every retry.
    #[error("the aggregate was changed concurrently; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}
