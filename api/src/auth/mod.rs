//! Access tokens, one service for every door.
//!
//! Tokens are HS256 JWTs signed with the instance's key (see `projection::signing_key`),
//! carrying the username and admin flag, as OpenPAI's did. They expire exactly at `exp`:
//! no leeway keeps an expired token alive. Doors differ only in how the token arrives and
//! in the words of their errors; [`AuthError`] says what went wrong, each door says it.
//! Logins with a password go through [`check_password`], throttled by [`LoginThrottle`].

mod login;
mod throttle;

pub use login::{LoginError, check_password};
pub use throttle::{LoginThrottle, ThrottlePolicy, Throttled};

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use warp::Filter;

/// The user a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: String,
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("Authorization header is not a Bearer token")]
    NotBearer,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    username: String,
    admin: bool,
    iat: u64,
    exp: u64,
    jti: Uuid,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

#[derive(Debug, thiserror::Error)]
#[error("token could not be signed: {0}")]
pub struct SignError(String);

impl Tokens {
    pub fn new(key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
        }
    }

    /// A token for `username` valid for `ttl` from now.
    pub fn issue(&self, username: &str, admin: bool, ttl: Duration) -> Result<String, SignError> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = Claims {
            username: username.to_string(),
            admin,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            jti: Uuid::new_v4(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| SignError(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(Principal {
                username: data.claims.username,
                admin: data.claims.admin,
            }),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(AuthError::Expired),
            Err(_) => Err(AuthError::Invalid),
        }
    }

    /// Checks an `Authorization: Bearer <token>` header value.
    pub fn verify_bearer(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let mut parts = header.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("Bearer"), Some(token), None) if !token.is_empty() => self.verify(token),
            _ => Err(AuthError::NotBearer),
        }
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
    fn a_token_speaks_for_its_user_until_it_expires() {
        let tokens = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let token = tokens
            .issue("jimmy", true, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            tokens.verify_bearer(Some(&format!("Bearer {token}"))),
            Ok(Principal {
                username: "jimmy".into(),
                admin: true
            })
        );
        let expired = Tokens::new(b"0123456789abcdef0123456789abcdef");
        let claims = Claims {
            username: "x".into(),
            admin: false,
            iat: 1,
            exp: 2,
            jti: Uuid::nil(),
        };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &expired.encoding)
            .unwrap();
        assert_eq!(tokens.verify(&old), Err(AuthError::Expired));
    }

    #[test]
    fn headers_that_are_not_bearer_tokens_are_told_apart() {
        let tokens = Tokens::new(b"k");
        assert_eq!(tokens.verify_bearer(None), Err(AuthError::Missing));
        assert_eq!(
            tokens.verify_bearer(Some("Token abc")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            tokens.verify_bearer(Some("Bearer")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            tokens.verify_bearer(Some("Bearer a b")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            tokens.verify_bearer(Some("Bearer abc")),
            Err(AuthError::Invalid)
        );
        let other = Tokens::new(b"another key")
            .issue("x", false, Duration::from_secs(60))
            .unwrap();
        assert_eq!(tokens.verify(&other), Err(AuthError::Invalid));
    }
}
