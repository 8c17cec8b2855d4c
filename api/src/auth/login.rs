//! Checking a username and password, the same way at every door: throttled (see
//! [`super::throttle`]), hashed behind the process-wide bound of `command::password`, and as
//! slow for an unknown user as for a wrong password. The hash comes from the credential
//! store, and only an approved user logs in (`command::user::may_log_in`).

use std::net::IpAddr;

use command::{
    password::{self, HashError},
    user::may_log_in,
};
use events::user::UserStatus;
use projection::{DbError, Pool, access::UserAccess, credentials};

use super::{
    Principal,
    throttle::{LoginThrottle, Throttled},
};

/// Why a login failed; each door says it in its own words.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Throttled(#[from] Throttled),
    #[error("no such user")]
    NoUser,
    #[error("wrong password")]
    WrongPassword,
    /// The user exists but may not log in (pending or disabled).
    #[error("the user is {}", .0.as_str())]
    NotApproved(UserStatus),
    #[error(transparent)]
    Query(#[from] DbError),
    #[error(transparent)]
    Hashing(#[from] HashError),
}

/// The user `username` if `password` is theirs. `client` is the TCP peer's address.
///
/// The throttle is asked twice: before the lookup, so a locked key costs nothing, and again
/// once a turn to hash is granted, since failures may have locked it while this waited. So
/// at most as many guesses as hashes can run at once slip past a threshold.
///
/// A pending or disabled user is refused before any hashing, counted as a failure: the
/// answer says the status whatever the password, so it never tells whether a guess at such
/// a user's password was right.
pub async fn check_password(
    pool: &Pool,
    throttle: &LoginThrottle,
    username: &str,
    password: String,
    client: Option<IpAddr>,
) -> Result<Principal, LoginError> {
    throttle.check(username, client)?;
    let user = credentials::login_record(pool, username).await?;
    if let Some(user) = &user
        && may_log_in(user.status).is_err()
    {
        throttle.failed(username, client);
        return Err(LoginError::NotApproved(user.status));
    }
    let turn = password::permit().await?;
    throttle.check(username, client)?;
    // Verify against a decoy hash for unknown users and users without a password, so every
    // failure takes as long.
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::decoy_hash().to_string());
    let matches = turn.verify(password, hash).await?
        && user.as_ref().is_some_and(|u| u.password_hash.is_some());
    match user {
        Some(user) if matches => {
            throttle.succeeded(username);
            Principal::observed(UserAccess {
                user_id: user.user_id,
                number: user.number,
                username: user.username,
                admin: user.admin,
                status: user.status,
                tokens_revoked_at: user.tokens_revoked_at,
                seq: user.last_seq,
            })
            .ok_or(LoginError::NoUser)
        }
        Some(_) => {
            throttle.failed(username, client);
            Err(LoginError::WrongPassword)
        }
        None => {
            throttle.failed(username, client);
            Err(LoginError::NoUser)
        }
    }
}
