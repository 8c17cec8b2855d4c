//! Values of identity, shared by every door: one user logs in at all five.

use events::user::UserStatus;
use serde_json::{Map, Value};

use super::{
    InvalidValue, Problem,
    rule::{Rule, text_value},
};

text_value!(
    /// A username: 1 to 64 of letters, digits, `_`, `.`, `-` and `@` (the course
    /// platform's users look like `jimmy@nchc`; OpenPAI's pattern is `\w.-`).
    Username,
    Rule {
        field: "username",
        min: 1,
        max: 64,
        allowed: Some((
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'),
            "/^[\\w.@-]+$/",
        )),
    }
);

text_value!(
    /// A password as typed: 6 to 256 characters. It is only ever hashed, never stored.
    Password,
    Rule {
        field: "password",
        min: 6,
        max: 256,
        allowed: None,
    }
);

text_value!(
    /// An email address: up to 254 characters with an `@` between a local part and a
    /// domain, no spaces.
    Email,
    Rule {
        field: "email",
        min: 3,
        max: 254,
        allowed: Some((|c| !c.is_whitespace(), "/^\\S+@\\S+$/")),
    }
);

impl Email {
    /// An email also needs its `@` between two non-empty parts.
    pub fn parse_address(value: impl Into<String>) -> Result<Self, super::InvalidValue> {
        let email = Self::parse(value)?;
        match email.as_str().split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(email),
            _ => Err(super::Problem::Pattern {
                pattern: "/^\\S+@\\S+$/",
            }
            .of("email")),
        }
    }
}

text_value!(
    /// The name of a virtual cluster (OpenPAI): letters, digits and `_`.
    VirtualCluster,
    Rule {
        field: "virtualCluster",
        min: 1,
        max: 64,
        allowed: Some((|c| c.is_ascii_alphanumeric() || c == '_', "/^[A-Za-z0-9_]+$/")),
    }
);

text_value!(
    /// A group's name (OpenPAI's): letters, digits and `_`.
    GroupName,
    Rule {
        field: "groupname",
        min: 1,
        max: 64,
        allowed: Some((|c| c.is_ascii_alphanumeric() || c == '_', "/^[A-Za-z0-9_]+$/")),
    }
);

text_value!(
    /// A group's description: free text of up to 1024 characters.
    GroupDescription,
    Rule {
        field: "description",
        min: 0,
        max: 1024,
        allowed: None,
    }
);

text_value!(
    /// A group's name in an external directory (an LDAP or AAD group): up to 256 characters.
    ExternalName,
    Rule {
        field: "externalName",
        min: 1,
        max: 256,
        allowed: None,
    }
);

text_value!(
    /// A phone number as people write it: digits, `+`, `-`, spaces and parentheses.
    Phone,
    Rule {
        field: "phone",
        min: 1,
        max: 32,
        allowed: Some((
            |c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'),
            "/^[0-9+() -]+$/",
        )),
    }
);

text_value!(
    /// A person's name, in any script: 1 to 128 characters.
    RealName,
    Rule {
        field: "realName",
        min: 1,
        max: 128,
        allowed: None,
    }
);

text_value!(
    /// The `uid` of the user's LDAP entry: the characters of a username.
    LdapUid,
    Rule {
        field: "ldapUid",
        min: 1,
        max: 256,
        allowed: Some((
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '@'),
            "/^[\\w.@-]+$/",
        )),
    }
);

text_value!(
    /// Why an admin audited a user as they did: up to 1024 characters, may be empty.
    Comment,
    Rule {
        field: "comment",
        min: 0,
        max: 1024,
        allowed: None,
    }
);

/// A user's status from its name (`pending`, `approved`, `disabled`).
pub fn parse_status(text: &str) -> Result<UserStatus, InvalidValue> {
    UserStatus::parse(text).ok_or(
        Problem::Pattern {
            pattern: "/^(pending|approved|disabled)$/",
        }
        .of("status"),
    )
}

/// A group's extension: free JSON, except the attributes Gantry reads, which must have their
/// type: `acls.admin` a boolean, `acls.virtualClusters` names of virtual clusters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct GroupExtension(Map<String, Value>);

impl GroupExtension {
    pub fn parse(extension: Map<String, Value>) -> Result<Self, InvalidValue> {
        let wrong = |field, expected| Problem::WrongType { expected }.of(field);
        match extension.get("acls") {
            None => {}
            Some(Value::Object(acls)) => {
                match acls.get("admin") {
                    None | Some(Value::Bool(_)) => {}
                    Some(_) => return Err(wrong("acls.admin", "boolean")),
                }
                match acls.get("virtualClusters") {
                    None => {}
                    Some(Value::Array(names)) => {
                        for name in names {
                            match name {
                                Value::String(name) => {
                                    VirtualCluster::parse(name.as_str())?;
                                }
                                _ => return Err(wrong("acls.virtualClusters", "string")),
                            }
                        }
                    }
                    Some(_) => return Err(wrong("acls.virtualClusters", "array")),
                }
            }
            Some(_) => return Err(wrong("acls", "object")),
        }
        Ok(Self(extension))
    }

    /// Whether members are admins (`acls.admin`).
    pub fn admin(&self) -> bool {
        events::group::acl_admin(&self.0)
    }

    /// The virtual clusters members may submit to (`acls.virtualClusters`).
    pub fn virtual_clusters(&self) -> Vec<String> {
        events::group::acl_virtual_clusters(&self.0)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Problem;

    #[test]
    fn usernames_of_every_door_parse() {
        for name in ["jimmy", "jimmy@nchc", "a.b-c_d", "ADMIN1"] {
            assert!(Username::parse(name).is_ok(), "{name}");
        }
        for name in ["", "a b", "a/b", "a\u{0}", "ü"] {
            assert!(Username::parse(name).is_err(), "{name:?}");
        }
        assert_eq!(
            Password::parse("12345").unwrap_err().problem,
            Problem::TooShort { min: 6 }
        );
        assert!(Email::parse_address("a@b").is_ok());
        assert!(Email::parse_address("@b").is_err());
        assert!(Email::parse_address("ab").is_err());
        assert!(VirtualCluster::parse("vc_1").is_ok());
        assert!(VirtualCluster::parse("vc-1").is_err());
    }

    #[test]
    fn values_of_users_and_groups_keep_their_rules() {
        assert!(GroupName::parse("admin_group1").is_ok());
        for bad in ["", "a-b", "a.b", "a b"] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Phone::parse("+886 (02) 1234-5678").is_ok());
        assert!(Phone::parse("12a").is_err());
        assert!(RealName::parse("王小明").is_ok());
        assert!(RealName::parse("").is_err());
        assert!(LdapUid::parse("jimmy.w").is_ok());
        assert!(LdapUid::parse("uid=jimmy,dc=x").is_err());
        assert!(Comment::parse("").is_ok());
        assert!(Comment::parse("x".repeat(1025)).is_err());
        assert!(ExternalName::parse("CN=GPU Users").is_ok());
        assert!(GroupDescription::parse("a\u{0}").is_err());
        assert_eq!(parse_status("disabled"), Ok(UserStatus::Disabled));
        assert_eq!(parse_status("gone").unwrap_err().field, "status");
    }

    #[test]
    fn a_group_extension_is_free_but_its_acls_are_typed() {
        let parse = |v: Value| GroupExtension::parse(v.as_object().unwrap().clone());
        let ext = parse(serde_json::json!({
            "acls": {"admin": true, "virtualClusters": ["default"], "storageConfigs": ["x"]},
            "anything": {"nested": [1, 2]}
        }))
        .unwrap();
        assert!(ext.admin());
        assert_eq!(ext.virtual_clusters(), vec!["default"]);
        assert!(!parse(serde_json::json!({})).unwrap().admin());
        for (bad, field) in [
            (serde_json::json!({"acls": []}), "acls"),
            (serde_json::json!({"acls": {"admin": "yes"}}), "acls.admin"),
            (
                serde_json::json!({"acls": {"virtualClusters": "default"}}),
                "acls.virtualClusters",
            ),
            (
                serde_json::json!({"acls": {"virtualClusters": [1]}}),
                "acls.virtualClusters",
            ),
            (
                serde_json::json!({"acls": {"virtualClusters": ["no-dash"]}}),
                "virtualCluster",
            ),
        ] {
            assert_eq!(parse(bad.clone()).unwrap_err().field, field, "{bad}");
        }
    }
}
