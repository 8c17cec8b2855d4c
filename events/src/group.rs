//! Events of the `Group` aggregate: a group of users (OpenPAI's), whose id is derived from
//! its name ([`group_id`]) as a user's is from the username.
//!
//! A group's `extension` is free JSON, as OpenPAI keeps it, except the attributes Gantry
//! reads: `acls.admin` (members are admins) and `acls.virtualClusters` (members may submit
//! to these). [`acl_admin`] and [`acl_virtual_clusters`] read them, for the domain and the
//! read models alike.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::DomainEvent;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum GroupEvent {
    GroupCreated(GroupCreated),
    GroupUpdated(GroupUpdated),
    GroupDeleted(GroupDeleted),
}

impl DomainEvent for GroupEvent {
    const AGGREGATE: &'static str = "group";
    const TYPES: &'static [&'static str] = &["GroupCreated", "GroupUpdated", "GroupDeleted"];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupCreated {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The group's name in an external directory (LDAP, AAD); empty when it has none.
    #[serde(default)]
    pub external_name: String,
    #[serde(default)]
    pub extension: Map<String, Value>,
}

/// Only the fields that changed are present; `extension` is the new one, whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Map<String, Value>>,
}

impl GroupUpdated {
    /// Applies these changes to a group: the one place that says what an update does, used
    /// by the aggregate and by the read model alike.
    pub fn apply_to(&self, group: &mut GroupCreated) {
        if let Some(v) = &self.description {
            group.description.clone_from(v);
        }
        if let Some(v) = &self.external_name {
            group.external_name.clone_from(v);
        }
        if let Some(v) = &self.extension {
            group.extension.clone_from(v);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupDeleted {}

const GROUP_NAMESPACE: Uuid = Uuid::from_u128(0x4d2c_8e1a_6f3b_4a7d_b5c9_0e8f_1a2b_6c3d);

/// The aggregate id of the group named `name`.
pub fn group_id(name: &str) -> String {
    Uuid::new_v5(&GROUP_NAMESPACE, name.as_bytes()).to_string()
}

fn acls(extension: &Map<String, Value>) -> Option<&Map<String, Value>> {
    extension.get("acls").and_then(Value::as_object)
}

/// Whether the group's members are admins (`acls.admin`; absent: no).
pub fn acl_admin(extension: &Map<String, Value>) -> bool {
    acls(extension)
        .and_then(|a| a.get("admin"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The virtual clusters the group's members may submit to (`acls.virtualClusters`).
pub fn acl_virtual_clusters(extension: &Map<String, Value>) -> Vec<String> {
    acls(extension)
        .and_then(|a| a.get("virtualClusters"))
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn acls_are_read_from_the_extension() {
        let ext = json!({"acls": {"admin": true, "virtualClusters": ["default", "vc1"]}, "x": 1});
        let ext = ext.as_object().unwrap();
        assert!(acl_admin(ext));
        assert_eq!(acl_virtual_clusters(ext), vec!["default", "vc1"]);
        let none = Map::new();
        assert!(!acl_admin(&none));
        assert!(acl_virtual_clusters(&none).is_empty());
    }

    #[test]
    fn an_update_changes_only_its_fields() {
        let mut group = GroupCreated {
            name: "g".into(),
            description: "d".into(),
            external_name: "e".into(),
            extension: Map::new(),
        };
        GroupUpdated {
            description: Some("d2".into()),
            ..Default::default()
        }
        .apply_to(&mut group);
        assert_eq!(
            (group.description.as_str(), group.external_name.as_str()),
            ("d2", "e")
        );
    }
}
