//! Events of the `User` aggregate. A user's aggregate id is derived from the username
//! ([`user_id`]), so that "is this name taken" is a question of one subject of the log.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum UserEvent {
    UserCreated(UserCreated),
}

impl DomainEvent for UserEvent {
    const AGGREGATE: &'static str = "user";
    const TYPES: &'static [&'static str] = &["UserCreated"];
}

/// A user created by an admin (or the bootstrap admin at start). The password is kept only
/// as its argon2id hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserCreated {
    pub username: String,
    pub password_hash: String,
    pub admin: bool,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub virtual_clusters: Vec<String>,
    #[serde(default)]
    pub extension: serde_json::Map<String, serde_json::Value>,
}

const USER_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_2c3e_8b4d_4f5a_9c0e_1d2b_3a4c_5e6f);

/// The aggregate id of the user named `username`: a UUIDv5 of the name, because usernames
/// may hold dots, which NATS subjects cannot carry in one token.
pub fn user_id(username: &str) -> String {
    Uuid::new_v5(&USER_NAMESPACE, username.as_bytes()).to_string()
}
