//! Who is asking, one service for every door.
//!
//! A request carries a signed token ([`tokens`]) in `Authorization`, spelled `Bearer x`
//! (OAuth, OpenPAI), `Token x` (Django REST framework) or bare `x` (the edge platform).
//! [`App::authenticate`] checks the signature and expiry, then judges the request by the
//! user's state *now*, from the in-memory access table (`projection::access`) kept current
//! by the user directory: a deleted user's tokens are invalid, a pending or disabled user's
//! are refused, a token issued before the user's last revocation (logout, a new password)
//! is revoked, and the admin flag is the user's current one, not what the token said when
//! it was issued. Doors differ only in how they word an [`AuthError`].
//!
//! Logins with a password go through [`check_password`], throttled by [`LoginThrottle`].
//! A login gets a [`Session`]: an access token and, for doors that refresh, a refresh token
//! that [`App::refresh`] trades for a new access token while the user may still log in.

mod login;
mod throttle;
mod tokens;

pub use login::{LoginError, check_password};
pub use throttle::{LoginThrottle, ThrottlePolicy, Throttled};
pub use tokens::{Kind, SignError, Tokens};

use std::time::Duration;

use chrono::{DateTime, Utc};
use command::{user::Caller, values::Username};
use events::user::UserStatus;
use projection::access::UserAccess;
use warp::Filter;

use crate::App;
use tokens::TokenError;

/// The user a request speaks for, as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's number, the same at every door (`projection::users::UserRow::number`).
    pub number: i64,
    /// The aggregate id of the user.
    pub user_id: String,
    pub username: String,
    /// Whether the user is an admin now.
    pub admin: bool,
    name: Username,
    /// The user as a login read them from the directory, offered to the access table when
    /// tokens are issued ([`AccessTable::offer`](projection::access::AccessTable::offer)).
    observed: Option<UserAccess>,
}

impl Principal {
    /// The principal of an approved user as the log left them; `None` for a name the
    /// domain would not take (none is ever written).
    fn of(user: &UserAccess) -> Option<Self> {
        Some(Self {
            number: user.number,
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            admin: user.admin,
            name: Username::parse(user.username.as_str()).ok()?,
            observed: None,
        })
    }

    /// The principal of a login that read `user` from the directory.
    fn observed(user: UserAccess) -> Option<Self> {
        let mut principal = Self::of(&user)?;
        principal.observed = Some(user);
        Some(principal)
    }

    /// The caller of a user command.
    pub fn caller(&self) -> Caller {
        Caller {
            username: self.name.clone(),
            admin: self.admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    /// A header that is none of the three spellings (`Basic …`, `Bearer` alone, …).
    #[error("Authorization header is not a token")]
    Malformed,
    /// Not signed by this instance, not a token of the right kind, or of a user who no
    /// longer exists.
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    /// Issued before the user logged out or changed their password.
    #[error("token revoked")]
    Revoked,
    /// The user exists but may not act (pending or disabled).
    #[error("the user is {}", .0.as_str())]
    NotApproved(UserStatus),
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => AuthError::Invalid,
            TokenError::Expired => AuthError::Expired,
        }
    }
}

/// The token in an `Authorization` header value: `Bearer x`, `Token x` or a bare `x`.
pub fn token_of(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?.trim();
    let mut parts = header.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("Bearer" | "Token"), Some(token), None) if !token.is_empty() => Ok(token),
        (Some(bare), None, None) if !bare.is_empty() && !matches!(bare, "Bearer" | "Token") => {
            Ok(bare)
        }
        _ => Err(AuthError::Malformed),
    }
}

/// What a login hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub access: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh: Option<String>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl App {
    /// The user a request's `Authorization` header speaks for, as they are now.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let claims = self.tokens.verify(token_of(header)?)?;
        if claims.kind() != Kind::Access {
            return Err(AuthError::Invalid);
        }
        self.current(&claims)
    }

    /// The user `username` as they are now, if they exist and may act (after a password
    /// check, which reads the directory itself).
    pub fn principal(&self, username: &str) -> Option<Principal> {
        let user = self.access.get(username)?;
        (user.status == UserStatus::Approved)
            .then(|| Principal::of(&user))
            .flatten()
    }

    /// Tokens for `who`: an access token for `access_ttl`, and a refresh token for
    /// `refresh_ttl` when the door refreshes.
    pub fn sign_in(
        &self,
        who: &Principal,
        access_ttl: Duration,
        refresh_ttl: Option<Duration>,
    ) -> Result<Session, SignError> {
        if let Some(user) = &who.observed {
            self.access.offer(user.clone());
        }
        let (access, access_expires_at) = self.tokens.issue(
            &who.username,
            who.number,
            who.admin,
            Kind::Access,
            access_ttl,
        )?;
        let (refresh, refresh_expires_at) = match refresh_ttl {
            Some(ttl) => {
                let (token, at) =
                    self.tokens
                        .issue(&who.username, who.number, who.admin, Kind::Refresh, ttl)?;
                (Some(token), Some(at))
            }
            None => (None, None),
        };
        Ok(Session {
            access,
            access_expires_at,
            refresh,
            refresh_expires_at,
        })
    }

    /// A new access token for the holder of `refresh_token`, while the user may still act
    /// and has not revoked it. The refresh token itself stays as it is.
    pub fn refresh(&self, refresh_token: &str, access_ttl: Duration) -> Result<Session, AuthError> {
        let claims = self.tokens.verify(refresh_token)?;
        if claims.kind() != Kind::Refresh {
            return Err(AuthError::Invalid);
        }
        let who = self.current(&claims)?;
        let mut session = self
            .sign_in(&who, access_ttl, None)
            .map_err(|_| AuthError::Invalid)?;
        session.refresh = Some(refresh_token.to_string());
        session.refresh_expires_at = Some(claims.expires_at());
        Ok(session)
    }

    /// Judges a verified token by its user's current state.
    fn current(&self, claims: &tokens::Claims) -> Result<Principal, AuthError> {
        let user = self
            .access
            .get(&claims.username)
            .ok_or(AuthError::Invalid)?;
        // A user deleted and created again under the same name is another user.
        if claims.uid.is_some_and(|uid| uid != user.number) {
            return Err(AuthError::Invalid);
        }
        if user.status != UserStatus::Approved {
            return Err(AuthError::NotApproved(user.status));
        }
        if user
            .tokens_revoked_at
            .is_some_and(|revoked| claims.issued_at() <= revoked)
        {
            return Err(AuthError::Revoked);
        }
        Principal::of(&user).ok_or(AuthError::Invalid)
    }
}

/// The raw `Authorization` header, for a door to check in its own words. Never rejects:
/// bytes that are not text become a token that fails to verify.
pub fn authorization()
-> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    crate::context::header_text("authorization")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_spellings_carry_a_token() {
        assert_eq!(token_of(Some("Bearer abc")), Ok("abc"));
        assert_eq!(token_of(Some("Token abc")), Ok("abc"));
        assert_eq!(token_of(Some("abc")), Ok("abc"));
        assert_eq!(token_of(None), Err(AuthError::Missing));
        for malformed in ["", "Bearer", "Token", "Bearer a b", "Basic dXNlcjpwdw== x"] {
            assert_eq!(
                token_of(Some(malformed)),
                Err(AuthError::Malformed),
                "{malformed:?}"
            );
        }
    }
}
