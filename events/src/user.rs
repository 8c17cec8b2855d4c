//! Events of the `User` aggregate. A user's aggregate id is derived from the username
//! ([`user_id`]), so that "is this name taken" is a question of one subject of the log.
//!
//! **No secret is part of any of these events.** A password lives as its argon2id hash in the
//! instance's credential store, outside the log (`projection::credentials`); an event that
//! sets a password carries only `credential`, the opaque id of that stored hash, and who set
//! it is the event's `meta.actor`. Version 1 of `UserCreated` carried the hash itself; it is
//! read as version 2 ([`UserEvent::upcast_one`]) with the hash replaced by the id of a
//! credential derived from it ([`legacy_credential`]), under which the user directory moves
//! the hash into the credential store the first time it meets the event.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{DecodeError, DomainEvent};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserRegistered(UserRegistered),
    UserCreated(UserCreated),
    UserAudited(UserAudited),
    PasswordChanged(PasswordChanged),
    PasswordReset(PasswordReset),
    UserEmailChanged(UserEmailChanged),
    UserDetailsChanged(UserDetailsChanged),
    UserAdminChanged(UserAdminChanged),
    UserVirtualClustersSet(UserVirtualClustersSet),
    UserGroupsSet(UserGroupsSet),
    UserExtensionUpdated(UserExtensionUpdated),
    UserDeleted(UserDeleted),
    TokensRevoked(TokensRevoked),
}

impl DomainEvent for UserEvent {
    const AGGREGATE: &'static str = "user";
    const TYPES: &'static [&'static str] = &[
        "UserRegistered",
        "UserCreated",
        "UserAudited",
        "PasswordChanged",
        "PasswordReset",
        "UserEmailChanged",
        "UserDetailsChanged",
        "UserAdminChanged",
        "UserVirtualClustersSet",
        "UserGroupsSet",
        "UserExtensionUpdated",
        "UserDeleted",
        "TokensRevoked",
    ];

    fn version(&self) -> u32 {
        match self {
            UserEvent::UserCreated(_) => 2,
            _ => 1,
        }
    }

    fn current_version(event_type: &str) -> u32 {
        match event_type {
            "UserCreated" => 2,
            _ => 1,
        }
    }

    fn upcast_one(event_type: &str, version: u32, data: Value) -> Result<Value, DecodeError> {
        match (event_type, version) {
            ("UserCreated", 1) => user_created_v1_to_v2(data),
            _ => Err(DecodeError::UnknownVersion {
                event_type: event_type.to_string(),
                version,
            }),
        }
    }
}

/// Where a user stands: only an approved user logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Registered by themself, waiting for an admin's audit.
    Pending,
    Approved,
    Disabled,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Approved => "approved",
            UserStatus::Disabled => "disabled",
        }
    }

    /// The status named `text` (`pending`, `approved`, `disabled`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(UserStatus::Pending),
            "approved" => Some(UserStatus::Approved),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A user who registered themself: pending until an admin audits them. Never an admin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserRegistered {
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub real_name: String,
    #[serde(default)]
    pub ldap_uid: String,
    #[serde(default)]
    pub extension: Map<String, Value>,
    /// The credential of the password chosen at registration; `None` for a user who proves
    /// who they are elsewhere (LDAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Uuid>,
}

/// A user created by an admin (or the bootstrap admin at start): approved at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserCreated {
    pub username: String,
    pub admin: bool,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub virtual_clusters: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub extension: Map<String, Value>,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub real_name: String,
    #[serde(default)]
    pub ldap_uid: String,
    /// The credential of the password set at creation; `None` for a user who proves who
    /// they are elsewhere (LDAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Uuid>,
}

// `UserCreated` as version 1 wrote it, with the hash in the log. Only read (its schema, and
// the upcast): no event of this shape is written any more. Its doc comment is the schema's
// description of version 1 and stays as it was.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "UserCreated")]
/// A user created by an admin (or the bootstrap admin at start). The password is kept only
/// as its argon2id hash.
pub struct UserCreatedV1 {
    pub username: String,
    pub password_hash: String,
    pub admin: bool,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub virtual_clusters: Vec<String>,
    #[serde(default)]
    pub extension: Map<String, Value>,
}

/// An admin set a user's status, saying why in `comment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserAudited {
    pub status: UserStatus,
    #[serde(default)]
    pub comment: String,
    /// The roster's release that allowed this change to take an admin out of the admins
    /// (`command::admins`); `None` when it took nobody out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Uuid>,
}

/// The user (or an admin) chose a new password: its hash is stored as `credential`. Like
/// [`TokensRevoked`], it voids every token issued to the user before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PasswordChanged {
    pub credential: Uuid,
}

/// A forgotten password was replaced after the user proved who they are (a reset code):
/// the new hash is stored as `credential`. It voids every earlier token, as
/// [`PasswordChanged`] does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PasswordReset {
    pub credential: Uuid,
}

/// The new email; empty when it was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserEmailChanged {
    pub email: String,
}

/// Personal details the user (or an admin) changed; `None` leaves a detail as it was, an
/// empty string removes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserDetailsChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_uid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserAdminChanged {
    pub admin: bool,
    /// The roster's release that allowed a demotion (see [`UserAudited::release`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<Uuid>,
}

/// The virtual clusters the user may submit to, all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserVirtualClustersSet {
    pub virtual_clusters: Vec<String>,
}

/// The groups the user belongs to, all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserGroupsSet {
    pub groups: Vec<String>,
}

/// The user's extension as it is now, whole (a merge is resolved when it is decided).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserExtensionUpdated {
    pub extension: Map<String, Value>,
}

/// The user is gone; the name may be taken again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserDeleted {}

/// Every token issued to the user before this event's `occurred_at` is void.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokensRevoked {}

const USER_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_2c3e_8b4d_4f5a_9c0e_1d2b_3a4c_5e6f);
const LEGACY_CREDENTIAL_NAMESPACE: Uuid =
    Uuid::from_u128(0x2b7e_41c0_5d3a_4e9f_a1b8_6c0d_7e2f_3a95);

/// The aggregate id of the user named `username`: a UUIDv5 of the name, because usernames
/// may hold dots, which NATS subjects cannot carry in one token.
pub fn user_id(username: &str) -> String {
    Uuid::new_v5(&USER_NAMESPACE, username.as_bytes()).to_string()
}

/// The credential id under which the hash of a version 1 `UserCreated` lives in the
/// credential store. Derived from the event's own data so that the aggregate, the upcast and
/// the user directory name the same credential without any of them storing anything; it
/// reveals nothing of the hash.
pub fn legacy_credential(username: &str, password_hash: &str) -> Uuid {
    let name = format!("{username}\n{password_hash}");
    Uuid::new_v5(&LEGACY_CREDENTIAL_NAMESPACE, name.as_bytes())
}

/// Version 1 → 2 of `UserCreated`: the hash leaves the data, the id of its credential takes
/// its place.
fn user_created_v1_to_v2(mut data: Value) -> Result<Value, DecodeError> {
    let upcast_error = |reason: &str| DecodeError::Upcast {
        event_type: "UserCreated".into(),
        version: 1,
        reason: reason.into(),
    };
    let Value::Object(map) = &mut data else {
        return Err(upcast_error("data is not an object"));
    };
    let hash = match map.remove("password_hash") {
        Some(Value::String(hash)) => hash,
        _ => return Err(upcast_error("password_hash is not a string")),
    };
    let Some(Value::String(username)) = map.get("username") else {
        return Err(upcast_error("username is not a string"));
    };
    let credential = legacy_credential(username, &hash);
    map.insert("credential".into(), Value::String(credential.to_string()));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Envelope, Meta};

    fn meta() -> Meta {
        Meta {
            actor: "system:bootstrap".into(),
            request_id: "r".into(),
            causation_id: None,
            occurred_at: chrono::Utc::now(),
            idempotency_key: None,
            request_digest: None,
        }
    }

    fn v1_envelope(data: Value) -> Envelope {
        Envelope {
            event_id: Uuid::new_v4(),
            aggregate: "user".into(),
            aggregate_id: user_id("admin"),
            event_type: "UserCreated".into(),
            version: 1,
            data,
            meta: meta(),
        }
    }

    #[test]
    fn a_version_1_user_created_is_read_without_its_hash() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let envelope = v1_envelope(json!({
            "username": "admin", "password_hash": hash, "admin": true,
            "email": "a@b", "virtual_clusters": ["default"], "extension": {"k": 1}
        }));
        let UserEvent::UserCreated(created) = envelope.decode::<UserEvent>().unwrap() else {
            panic!("a creation")
        };
        assert_eq!(
            created,
            UserCreated {
                username: "admin".into(),
                admin: true,
                email: "a@b".into(),
                virtual_clusters: vec!["default".into()],
                groups: vec![],
                extension: json!({"k": 1}).as_object().unwrap().clone(),
                phone: String::new(),
                real_name: String::new(),
                ldap_uid: String::new(),
                credential: Some(legacy_credential("admin", hash)),
            }
        );
        let text = serde_json::to_string(&created).unwrap();
        assert!(!text.contains("argon2"), "{text}");
    }

    #[test]
    fn a_version_1_user_created_without_a_hash_cannot_be_read() {
        let envelope = v1_envelope(json!({"username": "admin", "admin": true}));
        let error = envelope.decode::<UserEvent>().unwrap_err();
        assert!(!error.is_unknown(), "malformed, so parked: {error}");
    }

    #[test]
    fn events_are_written_in_the_current_version() {
        let created = UserEvent::UserCreated(UserCreated {
            username: "jimmy".into(),
            admin: false,
            email: String::new(),
            virtual_clusters: vec![],
            groups: vec![],
            extension: Map::new(),
            phone: String::new(),
            real_name: String::new(),
            ldap_uid: String::new(),
            credential: Some(Uuid::new_v4()),
        });
        let envelope = Envelope::new(&user_id("jimmy"), &created, meta()).unwrap();
        assert_eq!(envelope.version, 2);
        assert_eq!(envelope.decode::<UserEvent>().unwrap(), created);
        let audited = UserEvent::UserAudited(UserAudited {
            status: UserStatus::Disabled,
            comment: "left".into(),
            release: None,
        });
        let envelope = Envelope::new(&user_id("jimmy"), &audited, meta()).unwrap();
        assert_eq!(envelope.version, 1);
        assert_eq!(
            envelope.data,
            json!({"status": "disabled", "comment": "left"})
        );
    }

    #[test]
    fn statuses_round_trip_their_names() {
        for status in [
            UserStatus::Pending,
            UserStatus::Approved,
            UserStatus::Disabled,
        ] {
            assert_eq!(UserStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        assert_eq!(UserStatus::parse("Approved"), None);
    }
}
