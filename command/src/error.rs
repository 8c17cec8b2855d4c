use crate::{StoreError, values::InvalidValue};

/// A rule of the domain refused the command. Each front door turns these into its own
/// envelope, status code and message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    /// A value the domain cannot take (also what a door says when it cannot build one).
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The idempotency key was already used, on this aggregate, for another request.
    #[error("the idempotency key was already used for another request")]
    KeyReused,
    /// Other writers kept changing the aggregate through every retry.
    #[error("the aggregate was changed concurrently; try again")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}
