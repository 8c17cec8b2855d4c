//! Checking a username and password, the same way at every door: throttled (see
//! [`super::throttle`]), hashed behind the process-wide bound of `command::password`, and as
//! slow for an unknown user as for a wrong password.

use std::net::IpAddr;

use command::password::{self, HashError};
use projection::{DbError, Pool, users::UserRow};

use super::throttle::{LoginThrottle, Throttled};

/// Why a login failed; each door says it in its own words.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Throttled(#[from] Throttled),
    #[error("no such user")]
    NoUser,
    #[error("wrong password")]
    WrongPassword,
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
pub async fn check_password(
    pool: &Pool,
    throttle: &LoginThrottle,
    username: &str,
    password: String,
    client: Option<IpAddr>,
) -> Result<UserRow, LoginError> {
    throttle.check(username, client)?;
    let user = projection::users::user_by_name(pool, username).await?;
    let turn = password::permit().await?;
    throttle.check(username, client)?;
    // Verify against a decoy hash for unknown users, so both failures take as long.
    let hash = user.as_ref().map_or_else(
        || password::decoy_hash().to_string(),
        |u| u.password_hash.clone(),
    );
    let matches = turn.verify(password, hash).await?;
    match user {
        Some(user) if matches => {
            throttle.succeeded(username);
            Ok(user)
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
