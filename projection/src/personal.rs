//! The personal key store: the keys that seal a user's personal data in the log.
//!
//! Personal values (`events::personal`) are sealed with ChaCha20-Poly1305: a 256-bit key per
//! user, a random 96-bit nonce per value, and the person and field as associated data, so a
//! sealed value opens only where it was written. The keys live in `personal_keys`, in the
//! instance's schema beside the credentials. Like them it is not a read model: the log
//! cannot rebuild it, no projection clears it, and a rebuild of every read model finds the
//! same keys (or the same destroyed ones) that the first run found.
//!
//! - A user has at most one live key. It is made the first time their personal data is
//!   sealed ([`KeyStore::seal`]); two writers racing for it agree on one through the unique
//!   index of live keys.
//! - Forgetting a user destroys their keys ([`destroy`]): the key bytes go, the row stays
//!   with `destroyed_at`. Every value sealed with them then opens as an empty string, in
//!   every read model, every rebuild and every replay; the log is not changed. The user
//!   directory destroys them in the transaction that applies `UserForgotten`, so once that
//!   event is in the log the destruction is certain; the door that appends it destroys them
//!   at once too. Only keys made up to the forget are destroyed, so that data written after
//!   it (under a fresh key) survives a later rebuild.
//! - Opening looks all the keys of a batch up in one query ([`KeyStore::open`]). A key id
//!   this store does not know reads as destroyed. A value that fails to authenticate (not
//!   written by this store's key) also reads as empty, and is logged at error level.
//! - No key is cached in memory across calls: a key destroyed by another process must
//!   never seal or open again.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    ChaCha20Poly1305, Nonce,
    aead::{Aead, Generate, Key, KeyInit, Payload},
};
use chrono::{DateTime, Utc};
use events::{
    Envelope, PersonalKeys,
    personal::{self, KeysError, KeysFuture, Sealed},
};
use tracing::error;
use uuid::Uuid;

use crate::{DbError, Pool, secret::Secret};

/// Bytes of a nonce at the start of a sealed body.
const NONCE_LEN: usize = 12;

/// The instance's key store, on its PostgreSQL schema.
#[derive(Clone)]
pub struct KeyStore {
    pool: Pool,
}

impl KeyStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// The live key of `user_id`, made now if they have none.
    async fn current(&self, user_id: &str) -> Result<(Uuid, Vec<u8>), DbError> {
        let client = self.pool.get().await?;
        let select = client
            .prepare_cached(
                "SELECT key_id, key FROM personal_keys
                 WHERE user_id = $1 AND destroyed_at IS NULL",
            )
            .await?;
        let insert = client
            .prepare_cached(
                "INSERT INTO personal_keys (key_id, user_id, key, created_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) WHERE destroyed_at IS NULL DO NOTHING
                 RETURNING key_id, key",
            )
            .await?;
        // A writer that loses the race for the first key finds the winner's on the next
        // round.
        for _ in 0..3 {
            if let Some(row) = client.query_opt(&select, &[&user_id]).await? {
                return Ok((row.get(0), row.get(1)));
            }
            let fresh = Key::<ChaCha20Poly1305>::generate();
            let made = client
                .query_opt(
                    &insert,
                    &[
                        &Uuid::new_v4(),
                        &user_id,
                        &Secret(fresh.as_slice()),
                        &Utc::now(),
                    ],
                )
                .await?;
            if let Some(row) = made {
                return Ok((row.get(0), row.get(1)));
            }
        }
        Err(DbError::Internal(format!(
            "no live personal key for user {user_id} after three tries"
        )))
    }

    /// The keys named by `ids` that still exist (destroyed and unknown ones are left out).
    async fn keys(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<u8>>, DbError> {
        let client = self.pool.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT key_id, key FROM personal_keys
                 WHERE key_id = ANY($1) AND key IS NOT NULL",
            )
            .await?;
        Ok(client
            .query(&statement, &[&ids])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }
}

impl PersonalKeys for KeyStore {
    fn seal<'a>(&'a self, envelope: &'a mut Envelope) -> KeysFuture<'a> {
        Box::pin(async move {
            if !personal::needs_sealing(envelope) {
                return Ok(());
            }
            let (key_id, key) = self
                .current(&envelope.aggregate_id)
                .await
                .map_err(keys_error)?;
            seal_with(envelope, key_id, &key)
        })
    }

    fn open<'a>(&'a self, envelopes: Vec<&'a mut Envelope>) -> KeysFuture<'a> {
        Box::pin(async move {
            let mut ids: Vec<Uuid> = envelopes
                .iter()
                .flat_map(|e| personal::sealed_key_ids(e))
                .collect();
            if ids.is_empty() {
                return Ok(());
            }
            ids.sort_unstable();
            ids.dedup();
            let keys = self.keys(&ids).await.map_err(keys_error)?;
            for envelope in envelopes {
                open_with(envelope, &keys);
            }
            Ok(())
        })
    }
}

/// Seals every personal value of `envelope` that is not empty nor sealed, with `key`.
pub fn seal_with(envelope: &mut Envelope, key_id: Uuid, key: &[u8]) -> Result<(), KeysError> {
    let cipher = ChaCha20Poly1305::new_from_slice(key)
        .map_err(|_| KeysError::Failed(format!("personal key {key_id} is not 32 bytes")))?;
    let places = places(envelope);
    for (field, value) in personal::personal_values_mut(envelope) {
        if value.is_empty() || personal::parse_sealed(value).is_some() {
            continue;
        }
        let Some(aad) = places.get(field) else {
            continue;
        };
        let nonce = Nonce::generate();
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| KeysError::Failed("sealing failed".into()))?;
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(nonce.as_slice());
        body.extend_from_slice(&ciphertext);
        *value = Sealed::text(key_id, &STANDARD.encode(body));
    }
    Ok(())
}

/// Opens every sealed personal value of `envelope` with `keys`; a value whose key is not
/// there becomes empty.
pub fn open_with(envelope: &mut Envelope, keys: &HashMap<Uuid, Vec<u8>>) {
    let places = places(envelope);
    let event_id = envelope.event_id;
    for (field, value) in personal::personal_values_mut(envelope) {
        let Some(sealed) = personal::parse_sealed(value) else {
            continue;
        };
        let opened = match (keys.get(&sealed.key_id), places.get(field)) {
            (Some(key), Some(aad)) => open_value(key, sealed, aad).unwrap_or_else(|| {
                error!(%event_id, field, key_id = %sealed.key_id,
                    "a sealed personal value does not open with its key; read as erased");
                String::new()
            }),
            // Destroyed: forgotten.
            _ => String::new(),
        };
        *value = opened;
    }
}

/// The associated data of each personal field of `envelope`.
fn places(envelope: &Envelope) -> HashMap<&'static str, String> {
    personal::personal_fields(&envelope.aggregate, &envelope.event_type)
        .iter()
        .map(|field| (*field, personal::associated_data(envelope, field)))
        .collect()
}

/// The plaintext of `sealed`, if it authenticates under `key` and `aad`.
fn open_value(key: &[u8], sealed: Sealed<'_>, aad: &str) -> Option<String> {
    let cipher = ChaCha20Poly1305::new_from_slice(key).ok()?;
    let body = STANDARD.decode(sealed.body).ok()?;
    if body.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).ok()?;
    let plain = cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

/// Destroys every live key of `user_id` made up to `up_to`: what forgetting them does.
/// Returns how many keys went.
pub async fn destroy(pool: &Pool, user_id: &str, up_to: DateTime<Utc>) -> Result<u64, DbError> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(DESTROY).await?;
    Ok(client.execute(&statement, &[&user_id, &up_to]).await?)
}

/// Destroys the keys of user `$1` made up to `$2`.
pub(crate) const DESTROY: &str = "UPDATE personal_keys SET key = NULL, destroyed_at = now()
     WHERE user_id = $1 AND destroyed_at IS NULL AND created_at <= $2";

fn keys_error(e: DbError) -> KeysError {
    match e {
        DbError::Unavailable(reason) => KeysError::Unavailable(reason),
        other => KeysError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn envelope(event_type: &str, data: Value) -> Envelope {
        Envelope {
            event_id: Uuid::new_v4(),
            aggregate: "user".into(),
            aggregate_id: events::user::user_id("jimmy"),
            event_type: event_type.into(),
            version: 1,
            data,
            meta: events::Meta {
                actor: "admin".into(),
                request_id: "r".into(),
                causation_id: None,
                occurred_at: Utc::now(),
                idempotency_key: None,
                request_digest: None,
            },
        }
    }

    fn registered() -> Envelope {
        envelope(
            "UserRegistered",
            json!({"username": "jimmy", "email": "jimmy@example.org", "phone": "+41 44 555",
                   "real_name": "Jimmy Page", "ldap_uid": "", "extension": {}}),
        )
    }

    fn key() -> (Uuid, Vec<u8>) {
        (
            Uuid::new_v4(),
            Key::<ChaCha20Poly1305>::generate().as_slice().to_vec(),
        )
    }

    #[test]
    fn sealing_hides_each_value_and_opening_gives_it_back() {
        let (key_id, key) = key();
        let plain = registered();
        let mut sealed = plain.clone();
        seal_with(&mut sealed, key_id, &key).unwrap();
        let text = String::from_utf8(sealed.to_bytes().unwrap()).unwrap();
        for secret in ["jimmy@example.org", "+41 44 555", "Jimmy Page"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let email = sealed.data["email"].as_str().unwrap();
        assert!(
            email.starts_with(&format!("sealed:v1:{key_id}:")),
            "{email}"
        );
        assert_eq!(sealed.data["ldap_uid"], "", "an empty value stays empty");
        assert_eq!(sealed.data["username"], "jimmy", "not personal");
        // A random nonce each time: the same value seals differently.
        let mut again = plain.clone();
        seal_with(&mut again, key_id, &key).unwrap();
        assert_ne!(again.data["email"], sealed.data["email"]);

        let mut opened = Envelope::from_bytes(text.as_bytes()).unwrap();
        open_with(&mut opened, &HashMap::from([(key_id, key)]));
        assert_eq!(opened, plain);
    }

    #[test]
    fn a_destroyed_key_opens_as_empty() {
        let (key_id, key) = key();
        let mut sealed = registered();
        seal_with(&mut sealed, key_id, &key).unwrap();
        open_with(&mut sealed, &HashMap::new());
        assert_eq!(sealed.data["email"], "");
        assert_eq!(sealed.data["phone"], "");
        assert_eq!(sealed.data["real_name"], "");
        assert_eq!(sealed.data["username"], "jimmy");
    }

    #[test]
    fn a_value_opens_only_where_it_was_sealed() {
        let (key_id, key) = key();
        let mut sealed = registered();
        seal_with(&mut sealed, key_id, &key).unwrap();
        let keys = HashMap::from([(key_id, key)]);
        // Moved into another user's event: it does not open there.
        let mut moved = envelope("UserEmailChanged", json!({"email": sealed.data["email"]}));
        moved.aggregate_id = events::user::user_id("mallory");
        open_with(&mut moved, &keys);
        assert_eq!(moved.data["email"], "");
        // Moved into another field of the same user: neither.
        let mut swapped = sealed.clone();
        swapped.data["real_name"] = sealed.data["email"].clone();
        open_with(&mut swapped, &keys);
        assert_eq!(swapped.data["real_name"], "");
        assert_eq!(swapped.data["email"], "jimmy@example.org");
    }

    #[test]
    fn plaintext_of_older_logs_is_read_as_it_is() {
        let plain = registered();
        let mut old = plain.clone();
        open_with(&mut old, &HashMap::from([(Uuid::new_v4(), key().1)]));
        assert_eq!(old, plain);
    }
}
