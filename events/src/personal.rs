//! Personal data in the log, and how it is forgotten.
//!
//! Some fields of some events hold a person's data: a user's email, phone, real name and
//! LDAP uid. Each aggregate's event enum names them ([`DomainEvent::personal_fields`]); the
//! domain itself never sees anything but plaintext. The log keeps them only **sealed**: the
//! event store encrypts each such value with a key of the person it belongs to as the event
//! becomes bytes, and opens it as bytes become an event again (the store's load of an
//! aggregate, the projector before it decodes). The keys live outside the log, in the key
//! store ([`PersonalKeys`]); destroying a person's keys erases their data from every later
//! read of the log, while the log itself stays as it was.
//!
//! The person of an event's personal data is its aggregate: a user's keys are named by
//! their user id (the envelope's `aggregate_id`).
//!
//! A sealed value is a string `sealed:v1:<key id>:<base64 of nonce, ciphertext and tag>`
//! (standard base64, padded). An empty value stays empty: there is nothing to hide, and an
//! empty string is also what a value whose key was destroyed reads as. A value that does
//! not start with `sealed:v1:` is plaintext, as builds before sealing wrote it, and is read
//! as it is. Every non-empty personal value a build with a key store writes is sealed, so a
//! person cannot make a plaintext value look sealed.

use std::{future::Future, pin::Pin};

use serde_json::Value;
use uuid::Uuid;

use crate::{
    AccountEvent, AdminsEvent, CourseEvent, DomainEvent, Envelope, GroupEvent, SlurmJobEvent,
    SlurmUserEvent, UserEvent,
};

/// What starts a sealed value, with the version of its format.
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// The personal fields of events of `event_type` of aggregate `aggregate`.
pub fn personal_fields(aggregate: &str, event_type: &str) -> &'static [&'static str] {
    match aggregate {
        UserEvent::AGGREGATE => UserEvent::personal_fields(event_type),
        CourseEvent::AGGREGATE => CourseEvent::personal_fields(event_type),
        GroupEvent::AGGREGATE => GroupEvent::personal_fields(event_type),
        AdminsEvent::AGGREGATE => AdminsEvent::personal_fields(event_type),
        // Job, image and cluster events hold no personal field.
        AccountEvent::AGGREGATE => AccountEvent::personal_fields(event_type),
        SlurmUserEvent::AGGREGATE => SlurmUserEvent::personal_fields(event_type),
        SlurmJobEvent::AGGREGATE => SlurmJobEvent::personal_fields(event_type),
        _ => &[],
    }
}

/// A sealed value taken apart: the key it was sealed with, and the base64 of its nonce,
/// ciphertext and tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub key_id: Uuid,
    pub body: &'a str,
}

impl Sealed<'_> {
    /// The value as the log holds it.
    pub fn text(key_id: Uuid, body: &str) -> String {
        format!("{SEALED_PREFIX}{key_id}:{body}")
    }
}

/// `value` taken apart if it is sealed; `None` for plaintext (or an empty value).
pub fn parse_sealed(value: &str) -> Option<Sealed<'_>> {
    let rest = value.strip_prefix(SEALED_PREFIX)?;
    let (key_id, body) = rest.split_once(':')?;
    Some(Sealed {
        key_id: Uuid::parse_str(key_id).ok()?,
        body,
    })
}

/// What binds a sealed value to its place: the person and the field. A value copied into
/// another person's event, or into another field, does not open.
pub fn associated_data(envelope: &Envelope, field: &str) -> String {
    format!("{}/{}/{field}", envelope.aggregate, envelope.aggregate_id)
}

/// The personal values of `envelope` that are strings, with their field names. A field
/// that is missing or not a string is none of this module's business (decoding says what
/// is wrong with it).
pub fn personal_values_mut(
    envelope: &mut Envelope,
) -> impl Iterator<Item = (&'static str, &mut String)> {
    let fields = personal_fields(&envelope.aggregate, &envelope.event_type);
    let map = match &mut envelope.data {
        Value::Object(map) if !fields.is_empty() => Some(map),
        _ => None,
    };
    map.into_iter().flat_map(move |map| {
        map.iter_mut().filter_map(|(name, value)| {
            let field = fields.iter().find(|f| **f == name.as_str())?;
            match value {
                Value::String(text) => Some((*field, text)),
                _ => None,
            }
        })
    })
}

/// The personal values of `envelope` that are strings.
fn personal_values(envelope: &Envelope) -> impl Iterator<Item = &str> {
    let fields = personal_fields(&envelope.aggregate, &envelope.event_type);
    fields
        .iter()
        .filter_map(|field| envelope.data.get(*field)?.as_str())
}

/// Whether `envelope` holds a personal value that sealing would change (not empty, not
/// sealed yet).
pub fn needs_sealing(envelope: &Envelope) -> bool {
    personal_values(envelope).any(|v| !v.is_empty() && parse_sealed(v).is_none())
}

/// The keys the sealed values of `envelope` name, each once per value.
pub fn sealed_key_ids(envelope: &Envelope) -> impl Iterator<Item = Uuid> {
    personal_values(envelope).filter_map(|v| parse_sealed(v).map(|s| s.key_id))
}

/// Why the key store could not seal or open.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The key store cannot be reached now: try again later.
    #[error("personal key store unavailable: {0}")]
    Unavailable(String),
    #[error("personal key store failed: {0}")]
    Failed(String),
}

/// What a key store's [`PersonalKeys::seal`] and [`PersonalKeys::open`] return.
pub type KeysFuture<'a> = Pin<Box<dyn Future<Output = Result<(), KeysError>> + Send + 'a>>;

/// The store of the keys personal values are sealed with, kept outside the log. Injected
/// into the event store (which seals) and the projector (which opens).
pub trait PersonalKeys: Send + Sync {
    /// Seals in place every personal value of `envelope` that is not empty, with the
    /// current key of its person, made the first time that person's data is sealed.
    fn seal<'a>(&'a self, envelope: &'a mut Envelope) -> KeysFuture<'a>;

    /// Opens in place every sealed personal value of `envelopes`, looking their keys up
    /// together. A value whose key was destroyed (or is unknown to this store) opens as an
    /// empty string: it was forgotten. Plaintext values stay as they are.
    fn open<'a>(&'a self, envelopes: Vec<&'a mut Envelope>) -> KeysFuture<'a>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Meta;

    fn envelope(event_type: &str, data: Value) -> Envelope {
        Envelope {
            event_id: Uuid::new_v4(),
            aggregate: "user".into(),
            aggregate_id: "u1".into(),
            event_type: event_type.into(),
            version: 1,
            data,
            meta: Meta {
                actor: "admin".into(),
                request_id: "r".into(),
                causation_id: None,
                occurred_at: chrono::Utc::now(),
                idempotency_key: None,
                request_digest: None,
            },
        }
    }

    #[test]
    fn only_the_declared_string_fields_are_personal() {
        let mut e = envelope(
            "UserRegistered",
            json!({"username": "jimmy", "email": "j@x.org", "phone": 5, "real_name": "",
                   "ldap_uid": "jim", "extension": {"email": "not this"}}),
        );
        let fields: Vec<_> = personal_values_mut(&mut e).map(|(f, _)| f).collect();
        assert_eq!(fields, ["email", "real_name", "ldap_uid"]);
        assert!(needs_sealing(&e));
        let audited = envelope("UserAudited", json!({"status": "approved", "comment": "x"}));
        assert!(!needs_sealing(&audited));
        let course = Envelope {
            aggregate: "course".into(),
            ..envelope("CourseCreated", json!({"owner": "jimmy"}))
        };
        assert!(!needs_sealing(&course));
    }

    #[test]
    fn sealed_values_name_their_key() {
        let key = Uuid::new_v4();
        let text = Sealed::text(key, "AAAA");
        assert_eq!(
            parse_sealed(&text),
            Some(Sealed {
                key_id: key,
                body: "AAAA"
            })
        );
        assert_eq!(parse_sealed("j@x.org"), None);
        assert_eq!(parse_sealed("sealed:v1:not-a-uuid:AAAA"), None);
        let e = envelope("UserEmailChanged", json!({ "email": text }));
        assert!(!needs_sealing(&e), "already sealed");
        assert_eq!(sealed_key_ids(&e).collect::<Vec<_>>(), [key]);
    }
}
