//! Events of the `Admins` aggregate: the roster that keeps at least one admin.
//!
//! There is one roster per instance (aggregate id [`ROSTER`]). Before a change takes a user
//! out of the admins (a demotion, an audit that disables an approved admin), the roster
//! releases that admin; its sequence check orders every release, so two demotions at once
//! cannot both count on the other's admin. The rule itself is in `command::admins`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainEvent;

/// The aggregate id of the one roster.
pub const ROSTER: &str = "roster";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum AdminsEvent {
    AdminReleased(AdminReleased),
}

impl DomainEvent for AdminsEvent {
    const AGGREGATE: &'static str = "admins";
    const TYPES: &'static [&'static str] = &["AdminReleased"];
}

/// `username` may stop being an admin: the user event that does it carries `release`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdminReleased {
    pub username: String,
    pub release: Uuid,
}
