//! Signed tokens: HS256 JWTs naming their key (`kid`), their kind (access or refresh), the
//! user's number and the millisecond they were issued.
//!
//! A token only says who it was issued to and when. What the user may do is read from the
//! user's current state at every request ([`crate::App::authenticate`]), so the `admin`
//! claim is kept only for clients that read it (OpenPAI's did). Tokens expire exactly at
//! `exp`: no leeway keeps an expired token alive.
//!
//! A token checked once is remembered with its claims (up to [`VERIFIED_CAPACITY`] of them,
//! with the key ring that checked them): a client sends the same token with every request,
//! and checking its signature again costs more than the rest of a point read. Its expiry is
//! still compared at every use, and a new key ring (a rotation) starts with none.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use projection::token_keys::{PUBLISHED_FOR, TokenKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The key id that tokens without one (issued before keys had ids) are checked against.
const LEGACY_KID: &str = "legacy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub username: String,
    pub admin: bool,
    /// The user's number (`None` in tokens issued before numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i64>,
    pub iat: u64,
    /// When the token was issued, in milliseconds: revocation compares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
    pub exp: u64,
    pub jti: Uuid,
    /// The instance that issued the token (`None` in tokens issued before): another
    /// instance refuses it even when both were given the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `None` in tokens issued before refresh tokens: an access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<Kind>,
}

impl Claims {
    pub fn kind(&self) -> Kind {
        self.typ.unwrap_or(Kind::Access)
    }

    /// When the token was issued.
    pub fn issued_at(&self) -> DateTime<Utc> {
        let ms = self
            .iat_ms
            .unwrap_or_else(|| (self.iat as i64).saturating_mul(1000));
        DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp.min(i64::MAX as u64) as i64, 0)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Why a token is not good, before the user's state is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    Invalid,
    Expired,
}

#[derive(Debug, thiserror::Error)]
#[error("token could not be signed: {0}")]
pub struct SignError(String);

/// The keys this process signs and checks with.
pub struct Tokens {
    ring: RwLock<Arc<KeyRing>>,
    /// `GANTRY_TOKEN_KEY`: when set, it signs, and the stored keys still check.
    configured: Option<Vec<u8>>,
    instance: String,
    validation: Validation,
}

struct KeyRing {
    signing: (String, EncodingKey),
    checking: HashMap<String, DecodingKey>,
    /// Tokens these keys checked, with their claims.
    verified: Mutex<HashMap<String, Claims>>,
}

/// How many checked tokens a key ring remembers; past that it forgets them all and starts
/// again (a rare cost: one signature check per client).
const VERIFIED_CAPACITY: usize = 10_000;

impl Tokens {
    /// Tokens signed with `configured` if set, else with the newest published key of
    /// `stored`.
    pub fn new(instance: &str, stored: &[TokenKey], configured: Option<Vec<u8>>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        let ring = KeyRing::new(stored, configured.as_deref());
        Self {
            ring: RwLock::new(Arc::new(ring)),
            configured,
            instance: instance.to_string(),
            validation,
        }
    }

    /// Takes the instance's keys as they are now (after a rotation).
    pub fn reload(&self, stored: &[TokenKey]) {
        let ring = Arc::new(KeyRing::new(stored, self.configured.as_deref()));
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = ring;
    }

    fn ring(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A token of `kind` for the user, valid for `ttl` from now. Returns it with its expiry.
    pub(crate) fn issue(
        &self,
        username: &str,
        number: i64,
        admin: bool,
        kind: Kind,
        ttl: Duration,
    ) -> Result<(String, DateTime<Utc>), SignError> {
        let now = Utc::now();
        let iat = now.timestamp().max(0) as u64;
        let claims = Claims {
            username: username.to_string(),
            admin,
            uid: Some(number),
            iat,
            iat_ms: Some(now.timestamp_millis()),
            exp: iat.saturating_add(ttl.as_secs()),
            jti: Uuid::new_v4(),
            iss: Some(self.instance.clone()),
            typ: Some(kind),
        };
        let ring = self.ring();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(ring.signing.0.clone());
        let token = jsonwebtoken::encode(&header, &claims, &ring.signing.1)
            .map_err(|e| SignError(e.to_string()))?;
        Ok((token, claims.expires_at()))
    }

    /// The claims of `token` if one of this instance's keys signed it and it has not expired.
    pub(crate) fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let ring = self.ring();
        let known = ring
            .verified
            .lock()
            .ok()
            .and_then(|verified| verified.get(token).cloned());
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = self.check(&ring, token)?;
                if let Ok(mut verified) = ring.verified.lock() {
                    if verified.len() >= VERIFIED_CAPACITY {
                        verified.clear();
                    }
                    verified.insert(token.to_string(), claims.clone());
                }
                claims
            }
        };
        // As jsonwebtoken judges it, with no leeway: good until the second after `exp`.
        if claims.exp < Utc::now().timestamp().max(0) as u64 {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The signature, expiry and issuer of a token not seen before.
    fn check(&self, ring: &KeyRing, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.as_deref().unwrap_or(LEGACY_KID);
        let key = ring.checking.get(kid).ok_or(TokenError::Invalid)?;
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) if data.claims.iss.as_ref().is_none_or(|i| *i == self.instance) => {
                Ok(data.claims)
            }
            Ok(_) => Err(TokenError::Invalid),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => Err(TokenError::Expired),
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

impl KeyRing {
    fn new(stored: &[TokenKey], configured: Option<&[u8]>) -> Self {
        let mut checking: HashMap<String, DecodingKey> = stored
            .iter()
            .map(|k| (k.kid.clone(), DecodingKey::from_secret(&k.key)))
            .collect();
        let published_before = Utc::now()
            - chrono::Duration::from_std(PUBLISHED_FOR).unwrap_or(chrono::Duration::zero());
        let signing = match configured {
            Some(key) => {
                let kid = configured_kid(key);
                checking.insert(kid.clone(), DecodingKey::from_secret(key));
                (kid, EncodingKey::from_secret(key))
            }
            None => {
                // Oldest first: the last published one, else the oldest of all.
                let newest = stored
                    .iter()
                    .rev()
                    .find(|k| k.created_at <= published_before)
                    .or(stored.first());
                match newest {
                    Some(k) => (k.kid.clone(), EncodingKey::from_secret(&k.key)),
                    // No key at all cannot happen (the store creates one); sign with a
                    // random key nothing else accepts rather than fail.
                    None => {
                        let key = Uuid::new_v4().as_bytes().to_vec();
                        let kid = configured_kid(&key);
                        checking.insert(kid.clone(), DecodingKey::from_secret(&key));
                        (kid, EncodingKey::from_secret(&key))
                    }
                }
            }
        };
        Self {
            signing,
            checking,
            verified: Mutex::new(HashMap::new()),
        }
    }
}

/// The id of a configured key: derived from the key, so every process given the same key
/// names it the same, and it reveals nothing of it.
fn configured_kid(key: &[u8]) -> String {
    const NAMESPACE: Uuid = Uuid::from_u128(0x51c4_93e0_7a2d_4b6f_8e1c_0d9f_a2b3_c4d5);
    format!(
        "cfg-{}",
        &Uuid::new_v5(&NAMESPACE, key).simple().to_string()[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, bytes: &[u8], age_secs: i64) -> TokenKey {
        TokenKey {
            kid: kid.into(),
            key: bytes.to_vec(),
            created_at: Utc::now() - chrono::Duration::seconds(age_secs),
        }
    }

    #[test]
    fn a_token_names_its_key_and_is_checked_with_it() {
        let tokens = Tokens::new("t", &[key("a", b"first key", 10_000)], None);
        let (token, _) = tokens
            .issue("jimmy", 7, false, Kind::Access, Duration::from_secs(60))
            .unwrap();
        let claims = tokens.verify(&token).unwrap();
        assert_eq!((claims.username.as_str(), claims.uid), ("jimmy", Some(7)));
        assert_eq!(claims.kind(), Kind::Access);
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
            Some("a")
        );
        let other = Tokens::new("t", &[key("a", b"another key", 10_000)], None);
        assert_eq!(other.verify(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_rotated_key_signs_once_published_and_the_old_one_still_checks() {
        let old = key("old", b"old key", 10_000);
        let tokens = Tokens::new("t", std::slice::from_ref(&old), None);
        let (before, _) = tokens
            .issue("jimmy", 1, false, Kind::Access, Duration::from_secs(60))
            .unwrap();
        let fresh = key("new", b"new key", 0);
        tokens.reload(&[old.clone(), fresh.clone()]);
        let (still_old, _) = tokens
            .issue("jimmy", 1, false, Kind::Access, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&still_old)
                .unwrap()
                .kid
                .as_deref(),
            Some("old"),
            "a key not yet published does not sign"
        );
        let published = key("new", b"new key", PUBLISHED_FOR.as_secs() as i64 + 1);
        tokens.reload(&[old, published]);
        let (after, _) = tokens
            .issue("jimmy", 1, false, Kind::Access, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(),
            Some("new")
        );
        assert!(tokens.verify(&before).is_ok(), "old tokens stay good");
        assert!(tokens.verify(&after).is_ok());
    }

    #[test]
    fn a_configured_key_signs_and_stored_keys_still_check() {
        let stored = key("a", b"stored", 10_000);
        let before = Tokens::new("t", std::slice::from_ref(&stored), None)
            .issue("jimmy", 1, false, Kind::Access, Duration::from_secs(60))
            .unwrap()
            .0;
        let tokens = Tokens::new("t", &[stored], Some(b"configured key".to_vec()));
        let (token, _) = tokens
            .issue("jimmy", 1, false, Kind::Refresh, Duration::from_secs(60))
            .unwrap();
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        assert!(kid.starts_with("cfg-"), "{kid}");
        assert_eq!(tokens.verify(&token).unwrap().kind(), Kind::Refresh);
        assert!(tokens.verify(&before).is_ok());
        let elsewhere = Tokens::new("other", &[], Some(b"configured key".to_vec()));
        assert_eq!(elsewhere.verify(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_new_ring_forgets_it() -> Result<(), SignError> {
        let stored = key("a", b"stored", 10_000);
        let tokens = Tokens::new("t", std::slice::from_ref(&stored), None);
        let (token, _) = tokens.issue("jimmy", 1, false, Kind::Access, Duration::from_secs(1))?;
        assert!(tokens.verify(&token).is_ok());
        assert!(tokens.verify(&token).is_ok(), "remembered");
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(tokens.verify(&token).unwrap_err(), TokenError::Expired);

        let (token, _) = tokens.issue("jimmy", 1, false, Kind::Access, Duration::from_secs(60))?;
        assert!(tokens.verify(&token).is_ok());
        tokens.reload(&[key("b", b"another", 10_000)]);
        assert_eq!(
            tokens.verify(&token).unwrap_err(),
            TokenError::Invalid,
            "the key that signed it is gone"
        );
        Ok(())
    }

    #[test]
    fn an_expired_token_is_told_apart() {
        let stored = key("a", b"stored", 10_000);
        let tokens = Tokens::new("t", std::slice::from_ref(&stored), None);
        let claims = Claims {
            username: "x".into(),
            admin: false,
            uid: Some(1),
            iat: 1,
            iat_ms: None,
            exp: 2,
            jti: Uuid::nil(),
            iss: None,
            typ: None,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("a".into());
        let old =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&stored.key)).unwrap();
        assert_eq!(tokens.verify(&old).unwrap_err(), TokenError::Expired);
        assert_eq!(
            tokens.verify("not a token").unwrap_err(),
            TokenError::Invalid
        );
    }
}
