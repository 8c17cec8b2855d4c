use events::user::UserStatus;

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
    /// The caller may not do this to another user, or to what another user owns (only that
    /// user or an admin may).
    #[error("only the user themself or an admin may do this")]
    Forbidden,
    /// An admin cannot be deleted; demote them first.
    #[error("an admin cannot be deleted")]
    AdminNotDeletable,
    /// Only an approved user logs in.
    #[error("the user is {} and cannot log in", .0.as_str())]
    NotApproved(UserStatus),
    /// The change would leave no admin.
    #[error("the last admin cannot be demoted or disabled")]
    LastAdmin,
    /// The change takes an admin out of the admins, so the roster must release them first
    /// (`admins::execute_guarded` does both).
    #[error("the admins roster must release this admin first")]
    ReleaseRequired,
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
